"""Layer 2, array algorithms: numerical kernels on numpy arrays (drizzle, ...). May import io only."""
