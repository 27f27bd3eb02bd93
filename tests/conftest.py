"""Shared fixtures: the fake servers' TLS (`tests.fakes.tls`), the fake Discord REST API
(`tests.fakes.discord_rest`), its gateway (`tests.fakes.discord_gateway`) and both together
(`tests.fakes.discord`). Their fixtures live beside the fakes; this only registers them."""

pytest_plugins = [
    "tests.fakes.tls",
    "tests.fakes.discord_rest",
    "tests.fakes.discord_gateway",
    "tests.fakes.discord",
    "tests.fakes.llm_servers",
    "tests.fakes.search_servers",
]
