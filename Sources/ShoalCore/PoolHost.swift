/// One host of the broker's pool, as the cluster file lists it: a PVM host and how many
/// back-ends it may run at once.
public struct PoolHost: Sendable, Hashable, Codable {
    /// The PVM host name (a resolvable hostname).
    public var name: String
    /// How many leases it can hold at once.
    public var slots: Int

    /// Slots when the cluster file gives none: a small machine runs two back-ends comfortably.
    public static let defaultSlots = 2
    /// The slots a host may have; more than 64 is almost certainly a typo.
    public static let allowedSlots = 1...64

    public init(name: String, slots: Int = PoolHost.defaultSlots) {
        self.name = name
        self.slots = slots
    }
}
