/// libpvm3 allows one enrolment per process, and every test target runs in one process: any test
/// that attaches a `PVMEngine` holds this lock for as long as it is attached, whichever target
/// it lives in.
public actor PVMEnrolmentLock {
    public static let shared = PVMEnrolmentLock()

    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public nonisolated func withLock<R: Sendable>(_ body: () async throws -> R) async throws -> R {
        await acquire()
        do {
            let result = try await body()
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }

    /// For a test that holds the lock through a long, idle wait and attaches no engine in this
    /// process meanwhile (a cluster test waiting out one of PVM's own timeouts): other tests
    /// take the lock while `body` runs; then it is taken back, after whoever holds it then.
    public nonisolated func yielding<R: Sendable>(_ body: () async throws -> R) async throws -> R {
        await release()
        let result: Result<R, any Error>
        do {
            result = .success(try await body())
        } catch {
            result = .failure(error)
        }
        await acquire()
        return try result.get()
    }

    private func acquire() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func release() {
        if waiting.isEmpty {
            held = false
        } else {
            waiting.removeFirst().resume()  // The lock passes straight to the next in line.
        }
    }
}
