"""The API, one mixin per resource area; ``etp_client.Client`` combines them."""
