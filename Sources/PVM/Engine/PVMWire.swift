import CPVM

/// The engine's message body, packed with libpvm3's typed calls (XDR): a marker and version,
/// the field count, then per field a type code and its value. An `Int64` travels as two
/// `Int32` halves and a string as its UTF-8 byte count and bytes, so nothing depends on
/// `long`'s size or on `pvm_upkstr`'s unbounded buffer. Works on the active send or receive
/// buffer: PVM thread only.
enum PVMWire {
    /// "SHL1": tells our messages from anything else that reaches the task.
    static let marker: Int32 = 0x5348_4C31

    private enum Kind: Int32 {
        case int = 1
        case double = 2
        case string = 3
    }

    /// Packs `fields` into the active send buffer; returns the first libpvm3 error.
    static func pack(_ fields: [PVMMessage.Field]) -> Int32 {
        var status: Int32 = 0
        func int(_ value: Int32) {
            guard status >= 0 else { return }
            var value = value
            status = pvm_pkint(&value, 1, 1)
        }
        int(marker)
        int(Int32(fields.count))
        for field in fields {
            switch field {
            case .int(let value):
                int(Kind.int.rawValue)
                int(Int32(truncatingIfNeeded: value >> 32))
                int(Int32(truncatingIfNeeded: value))
            case .double(let value):
                int(Kind.double.rawValue)
                guard status >= 0 else { break }
                var value = value
                status = pvm_pkdouble(&value, 1, 1)
            case .string(let value):
                int(Kind.string.rawValue)
                var bytes = Array(value.utf8).map { CChar(bitPattern: $0) }
                int(Int32(bytes.count))
                guard status >= 0, !bytes.isEmpty else { break }
                status = pvm_pkbyte(&bytes, Int32(bytes.count), 1)
            }
        }
        return status
    }

    /// Unpacks the active receive buffer, which holds `length` bytes.
    static func unpack(length: Int32) throws -> [PVMMessage.Field] {
        func int() throws -> Int32 {
            var value: Int32 = 0
            if let error = PVMError.check(pvm_upkint(&value, 1, 1), "pvm_upkint") { throw error }
            return value
        }
        func malformed(_ why: String) -> PVMError {
            PVMError(.badFormat, operation: "unpack message", detail: why)
        }
        guard length >= 8, try int() == marker else { throw malformed("no engine marker") }
        let count = try int()
        // Each field takes at least 8 bytes: bounds a corrupt count.
        guard count >= 0, count <= length / 4 else { throw malformed("field count \(count)") }
        var fields: [PVMMessage.Field] = []
        fields.reserveCapacity(Int(count))
        for _ in 0..<count {
            switch Kind(rawValue: try int()) {
            case .int:
                let high = Int64(try int())
                let low = Int64(UInt32(bitPattern: try int()))
                fields.append(.int(high << 32 | low))
            case .double:
                var value = 0.0
                if let error = PVMError.check(pvm_upkdouble(&value, 1, 1), "pvm_upkdouble") { throw error }
                fields.append(.double(value))
            case .string:
                let size = try int()
                guard size >= 0, size <= length else { throw malformed("string of \(size) bytes") }
                var bytes = [CChar](repeating: 0, count: Int(size))
                if size > 0, let error = PVMError.check(pvm_upkbyte(&bytes, size, 1), "pvm_upkbyte") {
                    throw error
                }
                fields.append(.string(String(decoding: bytes.map { UInt8(bitPattern: $0) }, as: UTF8.self)))
            case nil:
                throw malformed("unknown field type")
            }
        }
        return fields
    }
}
