"""On-disk primitives shared by the daemons (below dfs/ and coord/ in the layers)."""
