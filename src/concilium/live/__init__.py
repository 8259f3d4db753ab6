"""Live sessions on the Janus media server: rooms, credentials, cameras and their control."""
