import Foundation
import ShoalAPI
@testable import ShoalBroker
import ShoalCore
import Testing

/// The per-lease secret, on the broker's side: made at grant, handed to the worker's launch and
/// to the holding front-end's own (POST) answers, kept in the lease table across a restart, and
/// in no public view or event.
@Suite("Broker: lease secrets")
struct BrokerLeaseSecretTests {
    @Test("made at grant; given to the worker and the holder's answers only; the same after a restart")
    func secretGoesToTheWorkerAndTheHolderOnly() async throws {
        try await withStateDirectory { directory in
            let hosts = [PoolHost(name: "c1", slots: 2)]
            let (id, secret) = try await withBroker(in: directory, hosts: hosts) { h in
                try await h.register("a")
                let granted = try await h.acquire("a")
                let text = try #require(granted.secret, "the acquire answer carries the secret")
                let secret = try #require(LeaseSecret(text))
                _ = try await h.waitForSpawn(granted.id)
                #expect(h.launcher.secrets[LeaseID(granted.id)] == secret)
                try await h.broker.handle(.ready(task: 262_145, endpoint: "c1:9145"))

                // The holder's answers: heartbeat, renew, drain, cancel-drain.
                let status = try await h.broker.heartbeat(frontend: "fe-a", Heartbeat())
                #expect(status.leases.map(\.secret) == [text])
                #expect(try await h.broker.renew(lease: granted.id).secret == text)
                #expect(try await h.broker.drain(lease: granted.id, LeaseChangeRequest()).secret == text)
                #expect(try await h.broker.cancelDrain(lease: granted.id, LeaseChangeRequest()).secret == text)

                // Everyone else's: none.
                #expect(try await h.broker.leases(includingFinal: true).allSatisfy { $0.secret == nil })
                #expect(try await h.broker.explain(lease: granted.id).lease.secret == nil)
                #expect(try await h.broker.workerAsked(lease: granted.id).secret == nil)
                let events = try await h.broker.events(after: 0, limit: 1000, wait: .zero)
                let json = String(decoding: try JSONEncoder().encode(events), as: UTF8.self)
                #expect(!json.contains(text))
                // A second lease gets its own.
                let other = try await h.acquire("a")
                #expect(other.secret != nil && other.secret != text)
                return (granted.id, secret)
            }
            // A restarted broker (the same lease table) gives the holder the same secret: its
            // workers still run with it.
            try await withBroker(in: directory, hosts: hosts) { h in
                #expect(try await h.lease(id).secret == secret)
                try await h.register("a")
                let status = try await h.broker.heartbeat(frontend: "fe-a", Heartbeat())
                #expect(status.leases.first { $0.id == id }?.secret == secret.text)
            }
        }
    }

    @Test("a queued lease has no secret yet; a released one shows none")
    func noSecretWithoutASlot() async throws {
        try await withBroker(hosts: [PoolHost(name: "c1", slots: 1)]) { h in
            try await h.register("a", max: 2)
            let first = try await h.acquire("a")
            let queued = try await h.acquire("a")
            #expect(first.secret != nil)
            #expect(queued.state == .requested && queued.secret == nil)
            #expect(try await h.broker.release(lease: first.id, LeaseChangeRequest()).secret == nil)
        }
    }
}
