/// When the broker tries again to bring a lost pool host back into the virtual machine
/// (`pvm_addhosts`): at the first attempt's time, then after each failure twice as long as the
/// last wait — 5 s, 10 s, 20 s, 40 s — never longer than the limit (60 s). Pure: the broker's
/// clock says what time it is.
public struct RejoinSchedule: Sendable, Hashable {
    /// The wait after the first failure.
    public let firstDelay: Duration
    /// The longest wait between two attempts.
    public let delayLimit: Duration
    /// Attempts that failed so far.
    public private(set) var failures = 0
    /// When the next attempt is due.
    public private(set) var nextAttempt: Timestamp

    public init(firstAttempt: Timestamp, firstDelay: Duration = .seconds(5), delayLimit: Duration = .seconds(60)) {
        self.firstDelay = firstDelay
        self.delayLimit = delayLimit
        nextAttempt = firstAttempt
    }

    public func isDue(at now: Timestamp) -> Bool {
        now >= nextAttempt
    }

    /// The wait after `failures` failed attempts (at least one).
    public func delay(afterFailures failures: Int) -> Duration {
        var delay = firstDelay
        for _ in 1..<max(1, failures) {
            delay = delay * 2
            if delay >= delayLimit { return delayLimit }
        }
        return min(delay, delayLimit)
    }

    /// The next attempt is due at once; the failures so far still count.
    public mutating func attemptNow(at now: Timestamp) {
        nextAttempt = min(nextAttempt, now)
    }

    /// An attempt that ended at `now` failed: the next one waits longer.
    public mutating func failed(at now: Timestamp) {
        failures += 1
        nextAttempt = now + delay(afterFailures: failures)
    }
}
