import ShoalAPI
import ShoalCore

extension FrontendReconciler.LeaseStatus {
    /// The reconciler's copy of what the broker's API says of a lease.
    init(_ view: LeaseView) {
        self.init(
            id: LeaseID(view.id), state: view.state, host: view.host, endpoint: view.endpoint,
            requestedAt: Timestamp(milliseconds: view.requestedAt), drainReason: view.drainReason)
    }
}
