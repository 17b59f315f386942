"""The KMA ultra-short forecast: issuance arithmetic, the client, the fake server."""
