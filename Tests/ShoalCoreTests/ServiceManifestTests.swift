import ShoalCore
import Testing

@Suite struct ServiceManifestModelTests {
    @Test func portPlaceholderIsReplacedInEveryArgument() {
        let manifest = ServiceManifest(
            name: "a", command: "shoal-webserver",
            arguments: ["--port", "{port}", "--url=http://127.0.0.1:{port}/x", "--size", "1024"],
            port: 8081)
        #expect(manifest.arguments(forPort: 40123)
            == ["--port", "40123", "--url=http://127.0.0.1:40123/x", "--size", "1024"])
    }

    @Test func defaultsAreThoseTheDocsPromise() {
        let manifest = ServiceManifest(name: "a", command: "x", port: 1)
        #expect(manifest.frontend == "localhost")
        #expect(manifest.healthCheckPath == "/health")
        #expect(manifest.concurrency == 8)
        #expect(manifest.thresholds == LoadThresholds(low: 2, high: 6))
        #expect(manifest.backends == BackendRange(min: 0, max: 3))
        #expect(manifest.priority == 0 && manifest.weight == 1)
        #expect(manifest.drainTimeout == .seconds(30))
    }

    @Test func diagnosticsPrintFileLineColumn() {
        #expect(Diagnostic(file: "services.d/a.yaml", line: 7, column: 12, message: "bad").description
            == "services.d/a.yaml:7:12: bad")
        #expect(Diagnostic(file: "x.yaml", message: "cannot read").description == "x.yaml: cannot read")
    }
}
