import ShoalCore

/// A lease as the broker stores it: the core's record plus the slot index it holds on its host.
public struct StoredLease: Sendable, Hashable {
    public var lease: Lease
    /// Which of `lease.host`'s slots the lease holds (or held, once final); set at grant.
    public var slotIndex: Int?
    /// What the worker serves only to: made at grant, given to the worker and to the holding
    /// front-end (its authenticated answers), never shown in the public views or the event log.
    public var secret: LeaseSecret?

    public init(lease: Lease, slotIndex: Int? = nil, secret: LeaseSecret? = nil) {
        self.lease = lease
        self.slotIndex = slotIndex
        self.secret = secret
    }

    public var id: LeaseID { lease.id }
}

/// What one transition did: the lease after it, and what the broker must now carry out.
public struct LeaseChange: Sendable, Hashable {
    public var lease: StoredLease
    public var action: Lease.Action
    /// The event row recorded with it.
    public var event: BrokerEvent

    public init(lease: StoredLease, action: Lease.Action, event: BrokerEvent) {
        self.lease = lease
        self.action = action
        self.event = event
    }
}
