import ShoalProcess
import CPVM
import Logging

extension PVMEngine {
    /// The hosts of the virtual machine (`pvm_config`).
    public func hosts() throws -> [PVMHost] {
        try requireAttached("pvm_config")
        var count: Int32 = 0
        var architectures: Int32 = 0
        var infos: UnsafeMutablePointer<pvmhostinfo>?
        if let error = PVMError.check(pvm_config(&count, &architectures, &infos), "pvm_config") { throw error }
        guard let infos else { return [] }
        // libpvm3 owns the array until the next pvm_config: copy it out now.
        return (0..<Int(count)).map { index in
            let info = infos[index]
            return PVMHost(
                id: PVMHostID(rawValue: info.hi_tid),
                name: info.hi_name.map { String(cString: $0) } ?? "",
                architecture: info.hi_arch.map { String(cString: $0) } ?? "",
                speed: Int(info.hi_speed))
        }
    }

    /// Adds hosts by name (`pvm_addhosts`; the master pvmd starts each one's pvmd through
    /// `PVM_RSH`). Blocks the PVM thread until every host answered or failed.
    ///
    /// - Parameters:
    ///   - names: host names, or host-file lines (`name option=value ...`).
    ///   - watch: also ask for a `.hostDeleted` event for each host added.
    /// - Returns: one outcome per name, in order: the new host's id, or why it failed
    ///   (`PvmDupHost`, `PvmNoHost`, `PvmCantStart`, …).
    public func addHosts(_ names: [String], watch: Bool = true) throws -> [PVMHostOutcome<PVMHostID>] {
        let operation = "pvm_addhosts(\(names.joined(separator: ", ")))"
        try requireAttached(operation)
        guard !names.isEmpty else { return [] }
        try requireCStrings(names, operation)
        // PVM leaves an entry alone when it never got to that host; the sentinel says so.
        let untouched = Int32.min
        var infos = [Int32](repeating: untouched, count: names.count)
        let status = withCStringArray(names) { pvm_addhosts($0, Int32(names.count), &infos) }
        if let error = PVMError.check(status, operation) { throw error }
        let outcomes = zip(names, infos).map { name, info -> PVMHostOutcome<PVMHostID> in
            let operation = "pvm_addhosts(\(name))"
            if info > 0 { return .init(name: name, result: .success(PVMHostID(rawValue: info))) }
            let code: PVMError.Code = info < 0 && info != untouched ? .init(rawValue: info) : .cantStart
            return .init(name: name, result: .failure(PVMError(code, operation: operation)))
        }
        let added = outcomes.compactMap { try? $0.result.get() }
        logger.info("PVM: added hosts", metadata: [
            "added": "\(added.count)/\(names.count)",
            "failed": "\(outcomes.compactMap { $0.error.map { "\($0)" } })",
        ])
        if watch, !added.isEmpty { try self.watch(hosts: added) }
        return outcomes
    }

    /// Removes hosts by name (`pvm_delhosts`): their pvmds stop, and so do their tasks.
    /// - Returns: one outcome per name, in order.
    public func deleteHosts(_ names: [String]) throws -> [PVMHostOutcome<Void>] {
        let operation = "pvm_delhosts(\(names.joined(separator: ", ")))"
        try requireAttached(operation)
        guard !names.isEmpty else { return [] }
        try requireCStrings(names, operation)
        var infos = [Int32](repeating: 0, count: names.count)
        let status = withCStringArray(names) { pvm_delhosts($0, Int32(names.count), &infos) }
        if let error = PVMError.check(status, operation) { throw error }
        logger.info("PVM: deleted hosts", metadata: ["hosts": "\(names)", "results": "\(infos)"])
        return zip(names, infos).map { name, info in
            if info < 0 {
                return .init(name: name, result: .failure(PVMError(.init(rawValue: info),
                                                                   operation: "pvm_delhosts(\(name))")))
            }
            return .init(name: name, result: .success(()))
        }
    }

    /// Throws `PvmBadParam` if a string would not survive the trip through C.
    func requireCStrings(_ strings: [String], _ operation: String) throws {
        if let bad = strings.first(where: { !isCStringSafe($0) }) {
            throw PVMError(.badParam, operation: operation, detail: "NUL inside \(bad.debugDescription)")
        }
    }
}
