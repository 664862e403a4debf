"""rtm: a live real-time management console for a SIP VoIP server."""
