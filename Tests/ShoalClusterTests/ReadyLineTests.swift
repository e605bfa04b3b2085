import ShoalTesting
import Testing

@Suite("ready lines")
struct ReadyLineTests {
    @Test("the broker's URL and the front-end's name, port and instance come out of their ready lines")
    func parsesReadyLines() {
        #expect(ReadyLine.brokerURL("shoal broker listening on http://127.0.0.1:7070 (pool c1×1; state /s)") == "http://127.0.0.1:7070")
        #expect(ReadyLine.brokerURL("shoal-webserver listening on 127.0.0.1:8080") == nil)
        let line = "shoal frontend a listening on 127.0.0.1:8081 (local instance pid 4242 on 127.0.0.1:40001, 0 back-ends)"
        #expect(ReadyLine.frontend(line) == ReadyLine.Frontend(name: "a", port: 8081, instancePID: 4242))
        #expect(ReadyLine.frontend("shoal-webserver listening on 127.0.0.1:40001 size=1024") == nil)
        #expect(ReadyLine.frontend("shoal frontend a listening on") == nil)
    }
}
