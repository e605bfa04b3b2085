import CPVM
import Logging

extension PVMEngine {
    /// Source tid of messages the pvmds make themselves (notifications).
    static let daemonSource = Int32(bitPattern: 0x8000_0000)

    /// Drains every message libpvm3 has (`pvm_nrecv(-1, -1)` until it returns 0) and returns
    /// the sockets to wait on next. Called by the PVM thread after each batch of jobs and
    /// whenever a PVM socket is readable; `hungUp` lists sockets `poll()` saw hang up.
    func pump(hungUp: [Int32]) -> [Int32] {
        guard detachedReason == nil else { return [] }
        while true {
            let buffer = pvm_nrecv(-1, -1)
            if buffer == 0 { break }
            if let error = PVMError.check(buffer, "pvm_nrecv") {
                lose(error)
                return []
            }
            handle(buffer: buffer)
            pvm_freebuf(buffer)
        }
        // libpvm3 does not always notice a dead pvmd in pvm_nrecv; poll() does.
        if hungUp.contains(daemonSocket) {
            lose(PVMError(.systemError, operation: "pvm_nrecv", detail: "the pvmd closed its socket"))
            return []
        }
        var fds: UnsafeMutablePointer<Int32>?
        let count = pvm_getfds(&fds)
        if let error = PVMError.check(count, "pvm_getfds") {
            lose(error)
            return []
        }
        guard let fds else { return [] }
        return (0..<Int(count)).map { fds[$0] }
    }

    /// Sorts one received message: a notification becomes an event, anything else goes to the
    /// mailbox.
    private func handle(buffer: Int32) {
        var length: Int32 = 0
        var tag: Int32 = 0
        var source: Int32 = 0
        if let error = PVMError.check(pvm_bufinfo(buffer, &length, &tag, &source), "pvm_bufinfo") {
            logger.warning("PVM: dropped a message", metadata: ["error": "\(error)"])
            return
        }
        if source == Self.daemonSource, tag >= PVMMessage.reservedTags {
            handleNotification(tag: tag)
            return
        }
        do {
            let fields = try PVMWire.unpack(length: length)
            let message = PVMReceivedMessage(
                source: PVMTaskID(rawValue: source),
                message: PVMMessage(tag: tag, fields: fields))
            if let dropped = mailbox.deliver(message) {
                logger.warning("PVM: mailbox full, dropped the oldest message", metadata: [
                    "source": "\(dropped.source)", "tag": "\(dropped.tag)",
                ])
            }
        } catch {
            logger.warning("PVM: dropped a message not in the engine's format", metadata: [
                "source": "\(PVMTaskID(rawValue: source))", "tag": "\(tag)", "error": "\(error)",
            ])
        }
    }

    private func handleNotification(tag: Int32) {
        func int() -> Int32? {
            var value: Int32 = 0
            return pvm_upkint(&value, 1, 1) < 0 ? nil : value
        }
        switch tag {
        case NotifyTag.taskExit:
            if let tid = int() { eventSink.yield(.taskExited(PVMTaskID(rawValue: tid))) }
        case NotifyTag.hostDelete:
            if let host = int() { eventSink.yield(.hostDeleted(PVMHostID(rawValue: host))) }
        case NotifyTag.hostAdd:
            guard let count = int(), count >= 0, count < 65536 else { return }
            let hosts = (0..<count).compactMap { _ in int() }.map(PVMHostID.init(rawValue:))
            eventSink.yield(.hostsAdded(hosts))
        default:
            logger.debug("PVM: unexpected message from a pvmd", metadata: ["tag": "\(tag)"])
        }
    }

    /// The pvmd is gone: leave libpvm3 tidy for a later attach, tell everyone, detach.
    private func lose(_ error: PVMError) {
        logger.error("PVM: lost the pvmd", metadata: ["error": "\(error)"])
        _ = pvm_exit()
        eventSink.yield(.disconnected(error))
        detach(error)
    }
}
