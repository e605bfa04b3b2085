/// Runs a closure on the PVM thread, for the few libpvm3 calls made before a ``PVMEngine``
/// exists (enrolment). It shares the engine's executor, so these calls never overlap theirs.
actor PVMThreadRunner {
    static let shared = PVMThreadRunner()

    nonisolated var unownedExecutor: UnownedSerialExecutor {
        PVMThreadExecutor.shared.asUnownedSerialExecutor()
    }

    func run<T: Sendable>(_ body: @Sendable () throws -> T) rethrows -> T {
        try body()
    }
}
