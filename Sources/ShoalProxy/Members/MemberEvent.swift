/// What the relay tells the load manager about its members, through ``MemberTable/events``.
public enum MemberEvent: Sendable, Hashable {
    /// The member refused, reset or timed out a connection before answering. It is out of rotation
    /// for ``RelayConfiguration/unhealthyBackoff`` and then tried again. Reported once per outage.
    case unreachable(member: String, reason: String)
    /// A removed member finished its last in-flight request.
    case drained(member: String)
}
