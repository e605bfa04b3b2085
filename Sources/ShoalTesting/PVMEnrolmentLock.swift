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
