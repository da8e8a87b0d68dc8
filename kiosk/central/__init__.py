"""The central system, from the device's side (client) and as a bench stand-in (server).

client.py    CentralClient: the contract of docs/central-api.yaml over requests
server.py    BenchCentral: the same contract over stdlib HTTP, for bench, demo and tests
store.py     the bench central's SQLite storage and rules
commands.py  `kiosk central`, `kiosk status`, `kiosk sync`
"""
