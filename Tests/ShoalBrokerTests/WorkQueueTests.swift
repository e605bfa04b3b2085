@testable import ShoalBroker
import Synchronization
import Testing

/// The broker's handed-off work: run beside the caller, owned by `run()`, and awaitable.
@Suite struct WorkQueueTests {
    @Test func idleReturnsOnceEveryJobAndTheJobsTheySubmittedHaveFinished() async {
        let queue = WorkQueue()
        let done = Mutex<[String]>([])
        await withDiscardingTaskGroup { group in
            group.addTask { await queue.run() }
            await queue.idle()  // Nothing submitted: returns at once.
            queue.submit {
                try? await Task.sleep(for: .milliseconds(50))
                queue.submit { done.withLock { $0.append("follow-up") } }
                done.withLock { $0.append("first") }
            }
            queue.submit { done.withLock { $0.append("second") } }
            await queue.idle()
            #expect(Set(done.withLock { $0 }) == ["first", "second", "follow-up"])
            group.cancelAll()
        }
    }
}
