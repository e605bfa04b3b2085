import ShoalAPI
import Foundation

/// Short human forms of durations and times for the CLI.
public enum TimeText {
    /// A duration in its two largest units, rounded down: `5s`, `3m12s`, `2h4m`, `3d7h`.
    /// Negative durations (clocks a little apart) read as `0s`.
    public static func duration(milliseconds: Int64) -> String {
        let seconds = max(0, milliseconds) / 1000
        let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60)
        if days > 0 { return hours > 0 ? "\(days)d\(hours)h" : "\(days)d" }
        if seconds >= 3600 { return minutes > 0 ? "\(seconds / 3600)h\(minutes)m" : "\(seconds / 3600)h" }
        if seconds >= 60 { return seconds % 60 > 0 ? "\(minutes)m\(seconds % 60)s" : "\(minutes)m" }
        return "\(seconds)s"
    }

    /// Time still to go, rounded up so that anything left never reads `0s`: `in 1s` for 400 ms.
    public static func remaining(milliseconds: Int64) -> String {
        duration(milliseconds: milliseconds <= 0 ? 0 : (milliseconds + 999) / 1000 * 1000)
    }

    /// `2026-03-01 14:05:09.042` in `timeZone`: the event log's times, to the millisecond because
    /// a request and its grant are often in the same second.
    public static func timestamp(milliseconds: Int64, timeZone: TimeZone = .current) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let (seconds, millisecond) = (milliseconds.floorDivided(by: 1000), milliseconds - milliseconds.floorDivided(by: 1000) * 1000)
        let date = Date(timeIntervalSince1970: TimeInterval(seconds))
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ value: Int?) -> String { pad(value ?? 0, 2) }
        return "\(pad(parts.year ?? 0, 4))-\(two(parts.month))-\(two(parts.day)) "
            + "\(two(parts.hour)):\(two(parts.minute)):\(two(parts.second)).\(pad(Int(millisecond), 3))"
    }

    private static func pad(_ value: Int, _ digits: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}

extension Int64 {
    /// Division rounding toward negative infinity, so times before 1970 still split correctly.
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return self % divisor < 0 ? quotient - 1 : quotient
    }
}
