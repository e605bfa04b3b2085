import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import ShoalAPI
@testable import ShoalBroker
import ShoalCore
import Testing

private let token = "s3cret-metrics-token"

/// `GET /metrics` on the broker's API port: open, Prometheus text, and the lease gauges follow
/// the lease table.
@Suite struct BrokerMetricsTests {
    @Test func metricsShowAGrantedLease() async throws {
        try await withBroker(hosts: [PoolHost(name: "c1", slots: 2)]) { h in
            try await h.register("a")
            try await servingAPI(h.broker, token: token) { port in
                let client = LiveHTTPClient(port: port)
                let acquired = try await client.execute(
                    uri: "/v1/leases", method: .post, headers: [.authorization: "Bearer \(token)", .contentType: "application/json"],
                    body: ByteBuffer(string: #"{"frontend": "fe-a"}"#))
                #expect(acquired.status == .created)

                // No token: reads are open.
                let response = try await client.execute(uri: "/metrics", method: .get)
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
                let text = String(buffer: response.body)
                for name in ["shoal_broker_leases", "shoal_broker_queue_length", "shoal_broker_grant_latency_seconds_bucket",
                             "shoal_broker_pvm_notifications_total", "shoal_broker_api_requests_total",
                             "shoal_broker_api_request_duration_seconds_bucket", "shoal_broker_slots", "shoal_broker_lease_events_total"] {
                    #expect(text.contains("\n\(name)") || text.hasPrefix(name), "missing \(name)")
                }
                let live = Self.values(in: text, name: "shoal_broker_leases", containing: #"service="a""#)
                #expect(live.reduce(0, +) == 1, "\(text)")
                #expect(Self.values(in: text, name: "shoal_broker_leases", containing: #"state="granted""#).reduce(0, +) == 1)
                #expect(Self.values(in: text, name: "shoal_broker_grant_latency_seconds_count", containing: "").first == 1, "\(text)")
                #expect(Self.values(in: text, name: "shoal_broker_slots", containing: #"state="used""#).first == 1)
                #expect(Self.values(in: text, name: "shoal_broker_api_requests_total",
                                    containing: #"route="/v1/leases",status="201""#).first == 1, "\(text)")
            }
        }
    }

    @Test func efficiencyIsSlotSecondsHeldPerThousandRequestsServed() async throws {
        try await withBroker(hosts: [PoolHost(name: "c1", slots: 2)], configure: { $0.leaseTTL = .seconds(600) }) { h in
            try await h.register("a")
            try await h.broker.tick()  // Starts the count.
            let first = try await h.activeLease("a")
            let second = try await h.activeLease("a")
            // Two slots held for 10 s (their workers reporting); fe-a reports 4 000 requests answered.
            for _ in 0..<10 {
                try await h.advance(by: .seconds(1), reportingFrom: [first.task, second.task])
                try await h.broker.tick()
            }
            _ = try await h.broker.heartbeat(frontend: "fe-a", Heartbeat(requestsServed: 4000))
            let service = try #require(try await h.broker.services().first)
            #expect(service.backendSeconds == 20)
            #expect(service.requestsServed == 4000)
            #expect(service.backendSecondsPerThousandRequests == 5)
            try await servingAPI(h.broker, token: token) { port in
                let text = String(buffer: try await LiveHTTPClient(port: port).execute(uri: "/metrics", method: .get).body)
                #expect(Self.values(in: text, name: "shoal_broker_backend_seconds_total", containing: #"service="a""#) == [20], "\(text)")
                #expect(Self.values(in: text, name: "shoal_broker_requests_served_total", containing: #"service="a""#) == [4000])
            }
        }
    }

    @Test func metricsShowThePrunedRowsAndTheDatabaseSize() async throws {
        try await withBroker(hosts: [PoolHost(name: "c1", slots: 2)], configure: { $0.retention.maxEvents = 2 }) { h in
            try await h.register("a")
            _ = try await h.acquire("a")
            _ = try await h.acquire("a")
            await h.broker.prune()
            try await servingAPI(h.broker, token: token) { port in
                let text = String(buffer: try await LiveHTTPClient(port: port).execute(uri: "/metrics", method: .get).body)
                #expect(Self.values(in: text, name: "shoal_broker_pruned_rows_total", containing: #"table="event""#).first ?? 0 >= 2, "\(text)")
                #expect(Self.values(in: text, name: "shoal_broker_database_bytes", containing: "").first ?? 0 > 0, "\(text)")
            }
            #expect(try await h.store.events(after: 0, limit: 100).first.map { $0.id > 1 } == true, "the oldest events are gone")
        }
    }

    /// The samples of `name` whose labels contain `containing`.
    static func values(in text: String, name: String, containing: String) -> [Double] {
        text.split(separator: "\n").compactMap { line -> Double? in
            guard line.hasPrefix(name + "{") || line.hasPrefix(name + " "), containing.isEmpty || line.contains(containing),
                  let value = line.split(separator: " ").last else { return nil }
            return Double(value)
        }
    }
}

