import Foundation
import PVM
import ShoalTesting
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension PVMIntegrationTests {
    /// Three real PVM hosts in network namespaces (`scripts/testhosts`), the master pvmd in the
    /// first. Needs root: without it these fail, with the script's reason.
    // The limit includes the wait for `PVMEnrolmentLock` (a cluster test holds it up to ~3½ minutes).
    @Suite(.timeLimit(.minutes(6)))
    struct NamespaceHosts {
        @Test func addSpawnOnAChosenHostTalkAndDeleteHosts() async throws {
            let echo = try echoProgram()
            try await withNamespaceVM(count: 3) { hosts, engine in
                #expect(try await engine.hosts().map(\.name) == [hosts.master])

                let added = try await engine.addHosts(hosts.others + ["no-such-host"])
                #expect(added.map(\.name) == hosts.others + ["no-such-host"])
                #expect(added.prefix(2).allSatisfy { $0.error == nil })
                #expect(added.last?.error?.code == .noHost)
                let again = try await engine.addHosts([hosts.others[0]])
                #expect(again.first?.error?.code == .duplicateHost)
                let all = try await engine.hosts()
                #expect(Set(all.map(\.name)) == Set(hosts.names))

                // The task runs where it was sent: its hostname is that namespace's.
                let target = hosts.others[1]
                let targetID = try #require(all.first { $0.name == target }?.id)
                let task = try await engine.spawn(echo, arguments: ["on", target], on: target)
                #expect(try await hello(from: task, on: engine) == target)
                #expect(try await engine.tasks(on: targetID).contains { $0.id == task && $0.host == targetID })

                // Messages cross hosts (through the pvmds) both ways.
                let message = PVMMessage(tag: 11, fields: [.string("drain"), .int(7), .double(0.5)])
                try await engine.send(message, to: task)
                let echoed = try await engine.receive(from: task, tag: 11, timeout: .seconds(15))
                #expect(echoed.message == message)
                try await engine.send(PVMMessage(tag: PVMEchoProtocol.stop), to: task)
                _ = try await nextEvent(of: engine, "exit of \(task) on \(target)") { $0 == .taskExited(task) }

                // Hosts added by the engine are watched: deleting one is an event too.
                let deletedName = hosts.others[0]
                let deletedID = try #require(all.first { $0.name == deletedName }?.id)
                let deleted = try await engine.deleteHosts([deletedName, "no-such-host"])
                #expect(deleted.first?.error == nil)
                #expect(deleted.last?.error?.code == .noHost)
                _ = try await nextEvent(of: engine, "deletion of \(deletedName)") { $0 == .hostDeleted(deletedID) }
                #expect(Set(try await engine.hosts().map(\.name)) == [hosts.master, target])
            }
        }

        @Test func aHostWhosePvmdIsKilledIsReportedDeleted() async throws {
            let echo = try echoProgram()
            try await withNamespaceVM(count: 3) { hosts, engine in
                try await engine.watchHostAdditions()
                let added = try await engine.addHosts(hosts.others)
                let ids = try added.map { try $0.result.get() }
                _ = try await nextEvent(of: engine, "hosts added") { event in
                    if case .hostsAdded(let new) = event { return !new.isEmpty }
                    return false
                }
                let victim = hosts.others[0]
                let task = try await engine.spawn(echo, on: victim)
                #expect(try await hello(from: task, on: engine) == victim)

                // Kill that host's pvmd by its PID, found in its namespace.
                let pid = try #require(try await hosts.pvmdPID(of: victim), "no pvmd in \(victim)")
                #expect(kill(pid, SIGTERM) == 0)
                _ = try await nextEvent(of: engine, "deletion of \(victim)") { $0 == .hostDeleted(ids[0]) }
                _ = try await nextEvent(of: engine, "exit of \(task) with its host") { $0 == .taskExited(task) }
                #expect(Set(try await engine.hosts().map(\.name)) == [hosts.master, hosts.others[1]])
            }
        }

        @Test func testHostsAreTornDownWhenTheBodyThrows() async throws {
            struct Boom: Error {}
            // What the body saw, for the checks after it threw.
            let made = Mutex<(hosts: TestHosts?, pids: [Int32])>((nil, []))
            await #expect(throws: Boom.self) {
                try await within(.seconds(60), "withTestHosts") {
                    try await withTestHosts(count: 2) { hosts in
                        let pids = try await everyPID(of: hosts)
                        made.withLock { $0 = (hosts, pids) }
                        #expect(try await hosts.pvmdPID(of: hosts.master) == hosts.masterPID)
                        throw Boom()
                    }
                }
            }
            let (seen, pids) = made.withLock { $0 }
            let hosts = try #require(seen)
            #expect(try await hosts.leftovers(pids: pids).isEmpty)
            // `down` again is harmless.
            try await hosts.down()
        }
    }
}

/// Makes `count` namespace hosts, attaches to their master, runs `body`, then closes the engine
/// and tears the hosts down whatever happens — and checks that no namespace, link, directory or
/// process of the run is left.
func withNamespaceVM(
    count: Int,
    _ body: (TestHosts, PVMEngine) async throws -> Void
) async throws {
    var pids: [Int32] = []
    let hosts = try await within(.seconds(60), "testhosts up") { try await TestHosts.up(count: count) }
    let result: Result<Void, any Error>
    do {
        pids = try await PVMEnrolmentLock.shared.withLock {
            try await PVMEngine.withAttached(socketPath: hosts.masterSocket, logger: testLogger("pvm-netns")) { engine in
                do {
                    try await body(hosts, engine)
                } catch {
                    pids = try await everyPID(of: hosts)
                    throw error
                }
                return try await everyPID(of: hosts)
            }
        }
        result = .success(())
    } catch {
        result = .failure(error)
    }
    try await within(.seconds(60), "testhosts down") { try await hosts.down() }
    let left = try await hosts.leftovers(pids: pids)
    #expect(left.isEmpty, "left behind: \(left)")
    #expect(!pids.isEmpty)
    try result.get()
}

/// Every process in the hosts' namespaces, the master pvmd included.
private func everyPID(of hosts: TestHosts) async throws -> [Int32] {
    var pids = [hosts.masterPID]
    for name in hosts.names {
        pids += try await hosts.processIDs(in: name)
    }
    return Array(Set(pids))
}
