/// An error from libpvm3, the pvmd, or the engine around them.
///
/// `code` is stable and is what programs (and the wire) should match on; `name` is PVM's own
/// constant name (`PvmNoHost`, …) or the engine's; `description` adds the operation, e.g.
/// `pvm_spawn(/usr/bin/x on c2): PvmNoHost (-6): No such host`.
public struct PVMError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong: libpvm3's error codes (negative, as in `pvm3.h`) and the engine's own
    /// (positive, from 1001).
    public let code: Code
    /// The libpvm3 call or engine operation that failed, with its main argument.
    public let operation: String
    /// More context, when there is any (a file name, the pvmd's last words, …).
    public let detail: String?

    /// An error of `code` from `operation`, with optional `detail`.
    public init(_ code: Code, operation: String, detail: String? = nil) {
        self.code = code
        self.operation = operation
        self.detail = detail
    }

    /// PVM's name of the code (`PvmNoHost`), or the engine's (`EngineTimedOut`).
    public var name: String { code.name }

    public var description: String {
        var text = "\(operation): \(code.name) (\(code.rawValue)): \(code.text)"
        if let detail, !detail.isEmpty { text += " — \(detail)" }
        return text
    }
}

extension PVMError {
    /// An error for a libpvm3 return value `status` (negative), or `nil` when it is not one.
    static func check(_ status: Int32, _ operation: @autoclosure () -> String) -> PVMError? {
        status < 0 ? PVMError(Code(rawValue: status), operation: operation()) : nil
    }
}
