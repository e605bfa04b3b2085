import Foundation
import Logging
import PVM
import ShoalTesting

/// A PVM task for the tests: enrols, says hello to its parent, echoes every message back to its
/// sender, answers the requests of ``PVMEchoProtocol``, and exits when told to. Its log goes to
/// stderr, which the pvmd writes to its log file.
@main
struct PVMEcho {
    static func main() async {
        var logger = Logger(label: "shoal-pvm-echo")
        logger.logLevel = .info
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            exit(try await run(arguments: arguments, logger: logger))
        } catch {
            logger.error("shoal-pvm-echo: \(error)")
            exit(1)
        }
    }

    static func run(arguments: [String], logger: Logger) async throws -> Int32 {
        let engine = try await PVMEngine.attach(logger: logger)
        let host = hostName()
        let pid = Int64(getpid())
        if let parent = engine.parent {
            try await engine.send(PVMMessage(tag: PVMEchoProtocol.hello, fields: [.string(host), .int(pid)]), to: parent)
        }
        if let index = arguments.firstIndex(of: PVMEchoProtocol.exitOption), index + 1 < arguments.count {
            await engine.close()
            return Int32(arguments[index + 1]) ?? 1
        }
        while true {
            let received = try await engine.receive()
            let answer: [PVMMessage.Field]
            switch received.tag {
            case PVMEchoProtocol.stop:
                await engine.close()
                return Int32(truncatingIfNeeded: received.fields.first?.intValue ?? 0)
            case PVMEchoProtocol.whoAmI:
                answer = [.string(host), .int(pid)] + arguments.map { .string($0) }
            case PVMEchoProtocol.environment:
                let value = received.fields.first?.stringValue.flatMap { ProcessInfo.processInfo.environment[$0] }
                answer = value.map { [.string($0)] } ?? []
            default:
                answer = received.fields
            }
            try await engine.send(PVMMessage(tag: received.tag, fields: answer), to: received.source)
        }
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
