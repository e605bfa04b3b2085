import Foundation
import ShoalCore

extension Timestamp {
    /// The wall clock now. The core never reads a clock; the daemons pass this in.
    public static func now() -> Timestamp {
        Timestamp(milliseconds: Int64((Date().timeIntervalSince1970 * 1000).rounded()))
    }
}
