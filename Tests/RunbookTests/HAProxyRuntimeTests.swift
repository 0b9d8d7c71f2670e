import Foundation
import Runbooks
import StepKit
import Testing

/// HAProxy's runtime API as ccrun's rollouts read it: `show stat` from HAProxy 2.6 (Debian 12's,
/// the lab's lb) with one server drained, one with open sessions and one whose checks fail.
@Suite struct HAProxyRuntimeTests {
    static let showStat = #"""
# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,
tuners,FRONTEND,,,0,0,9983,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,,,,,,,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,tcp,,0,0,0,,0,0,0,,,,,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
repo-nodes,repo-node,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,3,0,,1,3,1,,0,,2,0,,0,L4OK,,0,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,Layer4 check passed,,2,2,3,,,,198.51.100.12:3030,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
repo-nodes,repo-node-2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DRAIN,1,1,0,0,0,3,0,,1,3,2,,0,,2,0,,0,L4OK,,0,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,Layer4 check passed,,2,2,3,,,,198.51.100.24:3030,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
repo-nodes,BACKEND,0,0,0,0,999,0,0,0,0,0,,0,0,0,0,UP,2,2,0,,0,3,0,,1,3,0,,0,,1,0,,0,,,,,,,,,,,,,,0,0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,leastconn,,,,,,,0,0,0,,,,,0,0,0,0,0,,,,,2,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
web-nodes,web-node,0,0,3,5,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,3,0,,1,5,1,,0,,2,0,,0,L7OK,200,2,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,Layer7 check passed,,2,2,3,,,,198.51.100.13:80,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
web-nodes,web-node-2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN 1/2,1,1,0,0,0,3,0,,1,5,2,,0,,2,0,,0,L7OK,200,7,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,Layer7 check passed,,2,2,3,,,,198.51.100.25:80,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
"""#

    @Test func serversAreReadByTheHeadersColumnNames() throws {
        let servers = try HAProxyRuntime.servers(fromStat: Self.showStat)
        #expect(servers.map { "\($0.backend)/\($0.server)" } == ["repo-nodes/repo-node", "repo-nodes/repo-node-2", "web-nodes/web-node", "web-nodes/web-node-2"])
        #expect(servers.map(\.status) == ["UP", "DRAIN", "UP", "DOWN 1/2"])
        #expect(servers.map(\.sessions) == [0, 0, 3, 0])
    }

    @Test func anAnswerThatIsNotTheStatTableIsAnError() {
        for answer in ["", "Unknown command\n", "pxname,svname\nx,y\n", "# pxname,svname,scur\n"] {
            #expect(throws: HAProxyRuntimeError.self) { try HAProxyRuntime.servers(fromStat: answer) }
        }
    }

    /// The script sends one command to the admin socket (mode 600: root only) and says plainly
    /// when python3 is missing; the command travels as an argument, quoted.
    @Test func theScriptQuotesItsCommandAndNamesAMissingPython() {
        let script = HAProxyRuntime.script("set server web-nodes/web-node state drain")
        #expect(script.contains("'set server web-nodes/web-node state drain'"))
        #expect(script.contains(LoadBalancerRunbook.adminSocket))
        #expect(script.contains("python3 is not installed on this host"))
    }

    /// The script run for real against a socket answering as HAProxy does (python3 here as on the lb).
    @Test func theScriptTalksToAUnixSocket() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("haproxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let socket = dir.appendingPathComponent("admin.sock").path
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-c", """
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
            c, _ = s.accept(); got = c.recv(1000); c.sendall(b"you said: " + got); c.close()
            """, socket]
        try server.run()
        defer { if server.isRunning { server.terminate() } }
        while !FileManager.default.fileExists(atPath: socket) && server.isRunning { usleep(20_000) }
        let sh = Process()
        sh.executableURL = URL(fileURLWithPath: "/bin/sh")
        sh.arguments = ["-c", HAProxyRuntime.script("show stat", socket: socket)]
        let out = Pipe()
        sh.standardOutput = out
        try sh.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        sh.waitUntilExit()
        #expect(sh.terminationStatus == 0)
        #expect(text == "you said: show stat\n")

        let missing = Process()
        missing.executableURL = URL(fileURLWithPath: "/bin/sh")
        missing.arguments = ["-c", HAProxyRuntime.script("show stat", socket: dir.appendingPathComponent("none.sock").path)]
        let err = Pipe()
        missing.standardError = err
        try missing.run()
        let why = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        missing.waitUntilExit()
        #expect(missing.terminationStatus != 0 && why.contains("HAProxy's runtime API at") && why.contains("No such file"), "\(why)")
    }
}
