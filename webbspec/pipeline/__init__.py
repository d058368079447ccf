"""Layer 4, stage drivers: program discovery, parameters, running one step on a file, the Stage 2
chain, exp_to_source and the Stage 3 batch driver, re-run planning, product comparison."""
