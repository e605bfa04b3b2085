/// A PVM task identifier (tid), e.g. `t40001`.
public struct PVMTaskID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The tid as libpvm3 has it.
    public let rawValue: Int32

    /// Wraps a tid from libpvm3 or from a message.
    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// PVM's own notation: `t` and the tid in hexadecimal.
    public var description: String { "t" + String(UInt32(bitPattern: rawValue), radix: 16) }
}

/// The tid of a host's pvmd (a "dtid"), which names the host in PVM, e.g. `t80000`.
public struct PVMHostID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The pvmd tid as libpvm3 has it.
    public let rawValue: Int32

    /// Wraps a pvmd tid from libpvm3 or from a message.
    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    public var description: String { "t" + String(UInt32(bitPattern: rawValue), radix: 16) }
}
