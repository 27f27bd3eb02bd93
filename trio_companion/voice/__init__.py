"""Discord voice (PROTOCOL.md 5-6), from the wire up.

Sans-IO cores, no I/O and table-tested: `rtp` (headers, sequence/timestamp), `crypto` (the two
rtpsize AEAD transport modes), `protocol` (voice gateway v8 opcodes, payloads, close-code actions,
IP discovery), `dave` (DAVE end-to-end encryption over ``davey``), `opus` (PyAV libopus).

Trio shells, each owning what it starts: `pacing.PacedSender` (20 ms absolute grid over UDP),
`gateway.VoiceLink` (one voice server: websocket + UDP, heartbeats, resume), `session.VoiceSession`
(one guild: main-gateway op 4, links across moves and fresh sessions, the player),
`player.VoicePlayer` (the per-guild speech queue), `manager.VoiceManager` (all guilds, one
lock per guild). Errors: `errors.VoiceError` and its leaves.
"""
