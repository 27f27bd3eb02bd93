"""Discord voice: voice gateway v8, UDP/RTP, transport crypto, DAVE, Opus, player, receiver."""
