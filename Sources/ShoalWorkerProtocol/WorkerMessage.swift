import PVM

/// The PVM messages between a worker and the task that spawned it (the broker, or a test):
/// the paper's work-processor protocol. Over the wire go a tag and plain fields, never text to
/// match on.
public enum WorkerMessage: Sendable, Hashable {
    // worker → parent
    /// The service instance is healthy and the worker relays on `host:port`.
    case ready(host: String, port: Int)
    /// Requests in progress (running + queued), sent periodically.
    case load(inFlight: Int, queued: Int)
    /// The drain finished: nothing is in progress any more.
    case drained
    /// The worker could not start; it exits after sending this.
    case failed(reason: String)
    // parent → worker
    /// Stop taking requests, finish every in-flight one, then answer ``drained``.
    case drain
    /// Shut down now (after a drain, or to give up).
    case stop
    /// A restarted broker takes the worker over: from now on it reports to the sender.
    case adopt
    /// The lease's secret, sent once right after the spawn (never on the command line, which
    /// `ps` shows): the worker serves only requests that present it.
    case leaseSecret(String)

    public enum Tag: Int32, CaseIterable {
        case ready = 100, load, drained, failed
        case drain = 200, stop, adopt, leaseSecret
    }

    public var message: PVMMessage {
        switch self {
        case .ready(let host, let port): PVMMessage(tag: Tag.ready.rawValue, fields: [.string(host), .int(Int64(port))])
        case .load(let inFlight, let queued): PVMMessage(tag: Tag.load.rawValue, fields: [.int(Int64(inFlight)), .int(Int64(queued))])
        case .drained: PVMMessage(tag: Tag.drained.rawValue, fields: [])
        case .failed(let reason): PVMMessage(tag: Tag.failed.rawValue, fields: [.string(reason)])
        case .drain: PVMMessage(tag: Tag.drain.rawValue, fields: [])
        case .stop: PVMMessage(tag: Tag.stop.rawValue, fields: [])
        case .adopt: PVMMessage(tag: Tag.adopt.rawValue, fields: [])
        case .leaseSecret(let secret): PVMMessage(tag: Tag.leaseSecret.rawValue, fields: [.string(secret)])
        }
    }

    /// The message `tag` and `fields` carry, or `nil` when they are not a worker message.
    public init?(tag: Int32, fields: [PVMMessage.Field]) {
        guard let tag = Tag(rawValue: tag) else { return nil }
        func int(_ index: Int) -> Int? { fields.indices.contains(index) ? fields[index].intValue.map(Int.init) : nil }
        func string(_ index: Int) -> String? { fields.indices.contains(index) ? fields[index].stringValue : nil }
        switch tag {
        case .ready:
            guard fields.count == 2, let host = string(0), let port = int(1) else { return nil }
            self = .ready(host: host, port: port)
        case .load:
            guard fields.count == 2, let inFlight = int(0), let queued = int(1) else { return nil }
            self = .load(inFlight: inFlight, queued: queued)
        case .failed:
            guard fields.count == 1, let reason = string(0) else { return nil }
            self = .failed(reason: reason)
        case .leaseSecret:
            guard fields.count == 1, let secret = string(0) else { return nil }
            self = .leaseSecret(secret)
        case .drained, .drain, .stop, .adopt:
            guard fields.isEmpty else { return nil }
            switch tag {
            case .drained: self = .drained
            case .drain: self = .drain
            case .stop: self = .stop
            default: self = .adopt
            }
        }
    }
}
