"""The client SDK (``import lanterna``): imports nothing from the server side."""
