
mclient_credentials