extension FrontendReconciler {
    /// What the load manager actor must do. Every broker call is answered with the matching
    /// event (accepted, refused or failed), so the reconciler always learns how it went.
    public enum Action: Sendable, Hashable {
        /// Route requests to this back-end: its lease is active at `endpoint` (`host:port`). The
        /// member is named after the lease. Answer `memberCouldNotBeAdded` if that fails.
        case addMember(lease: LeaseID, endpoint: String)
        /// Stop routing to this back-end. `abandoningInFlight`: the back-end is gone (its lease
        /// ended without our drain), so requests still waiting there are sent elsewhere at once
        /// instead of waiting out their timeout. `reason` is for the log.
        case removeMember(lease: LeaseID, abandoningInFlight: Bool, reason: String)
        /// Watch the member just removed and report `memberDrained(lease:drain:)` once the
        /// front-end has nothing in flight there: only then may the lease be released.
        case waitForDrain(lease: LeaseID, drain: Int)
        /// Ask the broker for one more back-end, for the policy's `reason`. Answer
        /// `leaseAcquired`, `leaseDenied` (409) or `acquireFailed`.
        case acquire(reason: String)
        /// Ask the broker to drain a lease (a scale-down, or the front-end stopping). Answer
        /// `drainAccepted` or `drainFailed`.
        case drain(lease: LeaseID, reason: String)
        /// Ask the broker to cancel our scale-down drain: load rose again, and a back-end that
        /// is already running is cheaper than a new lease. Answer `drainCancelAccepted` or
        /// `drainCancelFailed`.
        case cancelDrain(lease: LeaseID, reason: String)
        /// Give the lease back. Answer `releaseAccepted`, `releaseFoundNoLease` (404) or
        /// `releaseFailed` (then it is sent again, see `releaseFailed(lease:now:)`).
        case release(lease: LeaseID, reason: String)
    }
}
