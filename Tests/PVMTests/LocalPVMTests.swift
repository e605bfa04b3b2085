import Foundation
import PVM
import ShoalTesting
import Testing

extension PVMIntegrationTests {
    /// One real pvmd on this host, started by the test, and real `shoal-pvm-echo` tasks.
    // Each test's limit includes its wait for `PVMEnrolmentLock`, which a cluster test holds for
    // up to ~3½ minutes (`ClusterTests.killedHostRejoins`).
    @Suite(.timeLimit(.minutes(6)))
    struct LocalPVM {
        @Test func listsTheLocalHost() async throws {
            try await withLocalPVM { _, engine in
                let hosts = try await engine.hosts()
                #expect(hosts.count == 1)
                #expect(hosts.first?.name == ProcessInfo.processInfo.hostName
                        || hosts.first?.name == hostName())
                #expect(hosts.first?.architecture.isEmpty == false)
                #expect(engine.parent == nil)
            }
        }

        @Test func spawnedTaskSaysHelloAndItsExitIsNotified() async throws {
            let echo = try echoProgram()
            try await withLocalPVM { _, engine in
                let task = try await engine.spawn(echo)
                #expect(try await hello(from: task, on: engine) == hostName())
                let tasks = try await engine.tasks()
                #expect(tasks.contains { $0.id == task && $0.parent == engine.tid })
                try await engine.send(PVMMessage(tag: PVMEchoProtocol.stop, fields: [.int(3)]), to: task)
                let event = try await nextEvent(of: engine, "exit of \(task)") { $0 == .taskExited(task) }
                #expect(event == .taskExited(task))
            }
        }

        @Test func killedTaskIsNotified() async throws {
            let echo = try echoProgram()
            try await withLocalPVM { _, engine in
                let task = try await engine.spawn(echo)
                _ = try await hello(from: task, on: engine)
                try await engine.kill(task)
                _ = try await nextEvent(of: engine, "exit of killed \(task)") { $0 == .taskExited(task) }
                #expect(try await !engine.tasks().contains { $0.id == task })
            }
        }

        @Test func messagesRoundTripThroughAnEchoTask() async throws {
            let echo = try echoProgram()
            try await withLocalPVM { _, engine in
                let task = try await engine.spawn(echo)
                _ = try await hello(from: task, on: engine)
                let message = PVMMessage(tag: 42, fields: [
                    .int(0), .int(-1), .int(Int64.max), .int(Int64.min), .int(1 << 40 + 7),
                    .double(3.25), .double(-0.0),
                    .string(""), .string("drain c2"), .string("ünïcødé ✓ 🐟"), .string(String(repeating: "x", count: 100_000)),
                ])
                try await engine.send(message, to: task)
                try await engine.send(PVMMessage(tag: 7), to: task)
                // Filtered by tag: the later message can be taken first, the earlier one waits.
                let empty = try await engine.receive(from: task, tag: 7, timeout: .seconds(10))
                #expect(empty.message == PVMMessage(tag: 7))
                let echoed = try await engine.receive(from: task, timeout: .seconds(10))
                #expect(echoed.source == task)
                #expect(echoed.message == message)
                try await engine.send(PVMMessage(tag: PVMEchoProtocol.stop), to: task)
            }
        }

        @Test func spawnPassesArgumentsAndEnvironmentWithoutAShell() async throws {
            let echo = try echoProgram()
            try await withLocalPVM { _, engine in
                let arguments = ["two words", "$HOME", "a;b", "*", ""]
                let task = try await engine.spawn(echo, arguments: arguments,
                                                  environment: ["SHOAL_GREETING": "hello world; $USER"])
                _ = try await hello(from: task, on: engine)
                try await engine.send(PVMMessage(tag: PVMEchoProtocol.whoAmI), to: task)
                let who = try await engine.receive(from: task, tag: PVMEchoProtocol.whoAmI, timeout: .seconds(10))
                #expect(who.fields.dropFirst(2).map(\.stringValue) == arguments)
                try await engine.send(PVMMessage(tag: PVMEchoProtocol.environment, fields: [.string("SHOAL_GREETING")]), to: task)
                let value = try await engine.receive(from: task, tag: PVMEchoProtocol.environment, timeout: .seconds(10))
                #expect(value.fields == [.string("hello world; $USER")])
                try await engine.send(PVMMessage(tag: PVMEchoProtocol.stop), to: task)
                _ = try await nextEvent(of: engine, "exit of \(task)") { $0 == .taskExited(task) }
            }
        }

        @Test func taskThatExitsAtOnceIsNotified() async throws {
            let echo = try echoProgram()
            try await withLocalPVM { _, engine in
                let task = try await engine.spawn(echo, arguments: [PVMEchoProtocol.exitOption, "5"])
                _ = try await nextEvent(of: engine, "exit of \(task)") { $0 == .taskExited(task) }
            }
        }

        @Test func missingProgramIsPvmNoFile() async throws {
            try await withLocalPVM { _, engine in
                let error = try await #require(throws: PVMError.self) {
                    try await engine.spawn("/nonexistent/shoal-program")
                }
                #expect(error.code == .noFile)
                #expect(error.name == "PvmNoFile")
                #expect(error.description.contains("pvm_spawn(/nonexistent/shoal-program)"))
                #expect(error.description.contains("No such file"))
            }
        }

        @Test func unknownHostIsPvmNoHost() async throws {
            let echo = try echoProgram()
            try await withLocalPVM { _, engine in
                let error = try await #require(throws: PVMError.self) {
                    try await engine.spawn(echo, on: "no-such-host")
                }
                #expect(error.code == .noHost)
                #expect(error.description.contains("on no-such-host"))
                let deleted = try await engine.deleteHosts(["no-such-host"])
                #expect(deleted.first?.error?.code == .noHost)
            }
        }

        @Test func badRequestsAreRejectedBeforeReachingPVM() async throws {
            try await withLocalPVM { _, engine in
                let relative = try await #require(throws: PVMError.self) { try await engine.spawn("bin/echo") }
                #expect(relative.code == .badParam)
                let badName = try await #require(throws: PVMError.self) {
                    try await engine.spawn("/bin/true", environment: ["A=B": "x"])
                }
                #expect(badName.code == .badParam)
                let reserved = try await #require(throws: PVMError.self) {
                    try await engine.send(PVMMessage(tag: PVMMessage.reservedTags), to: engine.tid)
                }
                #expect(reserved.code == .badParam)
            }
        }

        @Test func receiveTimesOutAndIsCancellable() async throws {
            try await withLocalPVM { _, engine in
                let clock = ContinuousClock()
                let start = clock.now
                let error = try await #require(throws: PVMError.self) {
                    try await engine.receive(tag: 99, timeout: .milliseconds(200))
                }
                #expect(error.code == .timedOut)
                #expect(clock.now - start < .seconds(5))

                let waiting = Task { try await engine.receive(tag: 99) }
                waiting.cancel()
                await #expect(throws: CancellationError.self) { try await waiting.value }

                // A message to ourselves still arrives after all that.
                try await engine.send(PVMMessage(tag: 99, fields: [.string("self")]), to: engine.tid)
                let own = try await engine.receive(tag: 99, timeout: .seconds(10))
                #expect(own.source == engine.tid)
            }
        }

        @Test func oneEnrolmentPerProcess() async throws {
            try await withLocalPVM { daemon, engine in
                let second = try await #require(throws: PVMError.self) {
                    try await PVMEngine.attach(socketPath: daemon.socketPath, logger: testLogger("second"))
                }
                #expect(second.code == .alreadyAttached)
                // Stopping the pvmd we are enrolled with would SIGTERM this process: refused.
                let stop = try await #require(throws: PVMError.self) { try await daemon.stop() }
                #expect(stop.code == .stillAttached)
                #expect(daemon.isRunning)
                #expect(await engine.isAttached)
            }
        }

        @Test func closedEngineRefusesWorkAndEndsItsEvents() async throws {
            try await withLocalPVM { _, engine in
                let waiting = Task { try await engine.receive(tag: 5) }
                // Let the receive register before closing.
                try await Task.sleep(for: .milliseconds(100))
                await engine.close()
                let error = try await #require(throws: PVMError.self) { try await waiting.value }
                #expect(error.code == .notAttached)
                await #expect(throws: PVMError.self) { try await engine.hosts() }
                let ended = try await within(.seconds(5), "end of events") {
                    for await _ in engine.events {}
                    return true
                }
                #expect(ended)
            }
        }
    }
}

func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count) == 0 else { return "" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
