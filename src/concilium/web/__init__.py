"""Web adapter: pages, JSON API and operations endpoints over the services' domain functions."""
