/// The paper's three load levels of one member (the front-end's local instance or a back-end).
public enum LoadLevel: Int, Sendable, Hashable, Comparable, CustomStringConvertible {
    case low
    case medium
    case high

    public static func < (lhs: LoadLevel, rhs: LoadLevel) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .low: "Low"
        case .medium: "Medium"
        case .high: "High"
        }
    }
}

extension LoadThresholds {
    /// The level of a member with `inFlight` requests in progress:
    /// Low below `low`, High at or above `high`, Medium in between.
    @inlinable
    public func level(inFlight: Int) -> LoadLevel {
        if inFlight < low { return .low }
        if inFlight >= high { return .high }
        return .medium
    }
}
