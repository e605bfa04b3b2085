import ShoalCore

/// Why the lease store refused an operation. The ``code`` is stable (it crosses the broker's API);
/// the message is for people.
///
/// A transition the lease state machine refuses is thrown as the core's
/// ``ShoalCore/Lease/TransitionError`` instead, and changes nothing either.
public struct LeaseStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// No lease has that id.
        public static let leaseNotFound = Code(rawValue: "lease-not-found")
        /// The (host, slot) is already held by a live lease.
        public static let slotTaken = Code(rawValue: "slot-taken")
        /// A stored row could not be read back (a value the model does not know).
        public static let corruptRecord = Code(rawValue: "corrupt-record")
        /// Details for an event could not be encoded as JSON.
        public static let badDetails = Code(rawValue: "bad-details")
    }

    public var code: Code
    public var message: String
    /// For ``Code/slotTaken``: the lease holding the slot, when known.
    public var holder: LeaseID?

    public init(code: Code, message: String, holder: LeaseID? = nil) {
        self.code = code
        self.message = message
        self.holder = holder
    }

    public var description: String { "\(code): \(message)" }

    static func notFound(_ id: LeaseID) -> LeaseStoreError {
        LeaseStoreError(code: .leaseNotFound, message: "no lease \(id)")
    }

    static func slotTaken(host: String, slot: Int, holder: LeaseID?) -> LeaseStoreError {
        let by = holder.map { " by \($0)" } ?? ""
        return LeaseStoreError(code: .slotTaken, message: "slot \(slot) of \(host) is already held\(by)", holder: holder)
    }

    static func corrupt(_ what: String) -> LeaseStoreError {
        LeaseStoreError(code: .corruptRecord, message: what)
    }
}
