# Application package (placeholder).
