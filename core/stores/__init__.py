"""SQL stores, one module per aggregate: keyword-only functions taking a connection first."""
