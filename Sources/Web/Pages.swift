import Captions
import Store

/// The site's HTML, rendered on the server: every page but the live feed works without
/// JavaScript, and one small stylesheet makes it readable on a phone.
enum Pages {
    static let css = """
    :root{--fg:#1d1f23;--muted:#5c6370;--bg:#fbfbfa;--card:#fff;--line:#e3e4e8;--accent:#0b5fff;--mark:#fff1a8}
    *{box-sizing:border-box}
    body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
    header{background:#16213a;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.2rem;align-items:center}
    header a{color:#fff;text-decoration:none;font-weight:600}
    header a.brand{font-size:1.1rem;margin-right:auto}
    header form{display:flex;gap:.3rem;flex:1 1 14rem;max-width:26rem}
    header input{flex:1;min-width:0;padding:.35rem .5rem;border-radius:4px;border:0}
    main{max-width:60rem;margin:0 auto;padding:1rem}
    h1{font-size:1.4rem;margin:.2rem 0 .8rem}
    h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
    a{color:var(--accent)}
    .muted{color:var(--muted)}
    .cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(15rem,1fr));gap:.7rem}
    .card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.6rem .8rem}
    .card h3{margin:0 0 .2rem;font-size:1rem}
    .dot{display:inline-block;width:.6rem;height:.6rem;border-radius:50%;background:#1fa344;margin-right:.3rem}
    ol.lines{list-style:none;margin:0;padding:0;background:var(--card);border:1px solid var(--line);border-radius:6px}
    ol.lines li{padding:.35rem .7rem;border-top:1px solid var(--line);display:flex;gap:.7rem;align-items:baseline}
    ol.lines li:first-child{border-top:0}
    ol.lines li:target{background:var(--mark)}
    .t{font:13px ui-monospace,Menlo,Consolas,monospace;color:var(--muted);white-space:nowrap;text-decoration:none}
    .who{font-size:.8rem;color:var(--muted);white-space:nowrap;min-width:5.5rem}
    .text{white-space:pre-line}
    #live{max-height:60vh;overflow-y:auto}
    table{border-collapse:collapse;width:100%;background:var(--card)}
    td,th{text-align:left;padding:.4rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
    form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin-bottom:1rem}
    form.filters label{display:flex;flex-direction:column;font-size:.85rem;color:var(--muted)}
    input,select,button{font:inherit;padding:.35rem .5rem}
    button{background:var(--accent);color:#fff;border:0;border-radius:4px;cursor:pointer}
    mark{background:var(--mark);padding:0 .1em}
    .days a{display:inline-block;margin:0 .4rem .4rem 0}
    .banner{background:#fde2e1;border:1px solid #f5a9a6;color:#7a1410;padding:.6rem .8rem;border-radius:6px;margin-bottom:1rem}
    .hidden{display:none}
    .downloads a{margin-right:.8rem}
    .services a,.services strong{margin-right:.8rem}
    @media (max-width:40rem){ol.lines li{flex-wrap:wrap;gap:.2rem .6rem}.who{min-width:0}main{padding:.6rem}}
    """

    static func layout(title: String, body: String, query: String = "", script: String? = nil) -> String {
        layoutHead(title: title, query: query) + body + layoutFoot(script: script)
    }

    /// The page up to and including `<main>` (a streamed page writes this first).
    static func layoutHead(title: String, query: String = "") -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width,initial-scale=1">
        <title>\(HTML.escape(title)) · CC Repository</title>
        <link rel="stylesheet" href="/style.css">
        </head><body>
        <header><a class="brand" href="/">CC Repository</a><a href="/">Live</a><a href="/archive">Archive</a>
        <form action="/search" method="get" role="search"><input type="search" name="q" value="\(HTML.escape(query))" placeholder="Search captions" aria-label="Search captions"><button>Search</button></form></header>
        <main>

        """
    }

    /// The end of a page; `script` is the path of this site's script it loads (no inline script:
    /// the Content-Security-Policy allows only the site's own files).
    static func layoutFoot(script: String? = nil) -> String {
        "\n</main>" + (script.map { "\n<script src=\"\($0)\"></script>" } ?? "") + "\n</body></html>\n"
    }

    static func tunerLabel(_ t: TunerStatus) -> String {
        if let d = t.description, !d.isEmpty { return d }
        return "\(t.address):\(t.port)"
    }

    static func programTitle(_ name: String?) -> String {
        guard let name, !name.isEmpty else { return "Unnamed program" }
        return name
    }

    // MARK: Live

    static func home(tuners: [TunerStatus], recent: [CaptionLine], cursor: LiveCursor) -> String {
        var body = "<h1>Live captions</h1>\n"
        body += "<div id=\"status\" class=\"banner hidden\" role=\"alert\">The database is unreachable: live captions will resume when it is back.</div>\n"
        body += "<h2>Connected tuners</h2>\n"
        if tuners.isEmpty {
            body += "<p class=\"muted\">No tuner is connected.</p>\n"
        } else {
            body += "<div class=\"cards\">\n"
            for t in tuners {
                body += "<div class=\"card\" id=\"tuner-\(t.id)\"><h3><span class=\"dot\" aria-hidden=\"true\"></span>\(HTML.escape(tunerLabel(t)))</h3>"
                if let p = t.currentProgram {
                    body += "<div><a href=\"/programs/\(p.id)\">\(HTML.escape(programTitle(p.name)))</a></div>"
                    body += "<div class=\"muted\">since \(UTCDate.clock(p.startedAt)) UTC · \(p.lineCount) lines</div>"
                } else {
                    body += "<div class=\"muted\">No program yet</div>"
                }
                body += "<div class=\"muted\">\(HTML.escape(t.hostname ?? "")) · connected \(UTCDate.dateTime(t.connectedAt)) UTC</div></div>\n"
            }
            body += "</div>\n"
        }
        let labels = tuners.map { (String($0.id), JSONText.string(tunerLabel($0))) }
        body += "<h2>Captions as they are decoded</h2>\n"
        body += "<ol id=\"live\" class=\"lines\" aria-live=\"polite\" data-cursor=\"\(cursor.lastLineID)\" data-tuners=\"\(HTML.escape(JSONText.object(labels).description))\">\n"
        for line in recent {
            body += liveItem(line, label: tuners.first { $0.id == line.tunerID }.map(tunerLabel) ?? "Tuner") + "\n"
        }
        body += "</ol>\n<p id=\"empty\" class=\"muted\"\(recent.isEmpty ? "" : " hidden")>Waiting for captions…</p>\n"
        body += "<noscript><p class=\"muted\">New captions appear here with JavaScript; without it, reload the page.</p></noscript>\n"
        return layout(title: "Live", body: body, script: liveScriptPath)
    }

    static func liveItem(_ line: CaptionLine, label: String) -> String {
        "<li id=\"line-\(line.id)\" data-tuner=\"\(line.tunerID)\"><span class=\"who\">\(HTML.escape(label))</span>"
            + "<a class=\"t\" href=\"/programs/\(line.programID)#l\(line.sequence)\">\(CaptionTime.format(line.startMs).prefix(8))</a>"
            + "<span class=\"text\">\(HTML.escape(line.text))</span></li>"
    }

    static let liveScriptPath = "/live.js"

    /// Appends lines from the SSE feed; skips lines already shown (the page's own, or a resumed
    /// feed's repeats); keeps the newest 300. Served as `liveScriptPath`.
    static let liveScript = """
    (function(){var list=document.getElementById('live'),empty=document.getElementById('empty'),status=document.getElementById('status');
    var names=JSON.parse(list.dataset.tuners||'{}');
    function pad(n){return (n<10?'0':'')+n}
    function clock(ms){var s=Math.floor(ms/1000);return pad(Math.floor(s/3600))+':'+pad(Math.floor(s/60)%60)+':'+pad(s%60)}
    var src=new EventSource('/live/events?after='+encodeURIComponent(list.dataset.cursor));
    src.addEventListener('open',function(){document.body.dataset.live='open'});
    src.addEventListener('line',function(e){var l=JSON.parse(e.data);if(document.getElementById('line-'+l.id))return;
    var li=document.createElement('li');li.id='line-'+l.id;li.dataset.tuner=l.tuner;
    var who=document.createElement('span');who.className='who';who.textContent=names[l.tuner]||('Tuner '+l.tuner.slice(-4));
    var a=document.createElement('a');a.className='t';a.href='/programs/'+l.program+'#l'+l.sequence;a.textContent=clock(l.startMs);
    var t=document.createElement('span');t.className='text';t.textContent=l.text;
    li.appendChild(who);li.appendChild(a);li.appendChild(t);
    var atEnd=list.scrollTop+list.clientHeight>=list.scrollHeight-8;list.appendChild(li);
    while(list.children.length>300)list.removeChild(list.firstChild);
    if(atEnd)list.scrollTop=list.scrollHeight;empty.hidden=true;status.classList.add('hidden')});
    src.addEventListener('status',function(e){var s=JSON.parse(e.data);status.classList.toggle('hidden',s.database!=='unreachable')});
    })();
    """

    // MARK: Archive

    static func archive(day: UTCDate?, days: [UTCDate], tuners: [TunerStatus], tunerID: Int64?, programs: [ProgramSummary]) -> String {
        var body = "<h1>Archive</h1>\n"
        body += "<form class=\"filters\" action=\"/archive\" method=\"get\"><label>Date (UTC)<input type=\"date\" name=\"date\" value=\"\(day?.text ?? "")\"></label>"
        body += "<label>Tuner<select name=\"tuner\"><option value=\"\">All tuners</option>"
        for t in tuners {
            body += "<option value=\"\(t.id)\"\(t.id == tunerID ? " selected" : "")>\(HTML.escape(tunerLabel(t)))\(t.isConnected ? "" : " (gone)")</option>"
        }
        body += "</select></label><button>Show</button></form>\n"
        if !days.isEmpty {
            body += "<nav class=\"days\" aria-label=\"Days with programs\">"
            for d in days {
                let tunerParam = tunerID.map { "&amp;tuner=\($0)" } ?? ""
                body += d == day ? "<strong>\(d.text)</strong> " : "<a href=\"/archive?date=\(d.text)\(tunerParam)\">\(d.text)</a> "
            }
            body += "</nav>\n"
        }
        body += "<h2>\(day.map { "Programs of \($0.text)" } ?? "Latest programs")</h2>\n"
        if programs.isEmpty {
            body += "<p class=\"muted\">No programs.</p>\n"
        } else {
            body += "<table><thead><tr><th>Started (UTC)</th><th>Program</th><th>Tuner</th><th>Lines</th></tr></thead><tbody>\n"
            for p in programs {
                body += "<tr><td>\(UTCDate.dateTime(p.startedAt))</td><td><a href=\"/programs/\(p.id)\">\(HTML.escape(programTitle(p.name)))</a></td>"
                body += "<td>\(HTML.escape(p.tunerDescription ?? "tuner \(p.tunerID)"))</td><td>\(p.lineCount)</td></tr>\n"
            }
            body += "</tbody></table>\n"
        }
        return layout(title: "Archive", body: body)
    }

    /// A program's transcript page is streamed in three parts (any number of lines in constant
    /// memory): `programHead`, `programLines` per page of lines, `programFoot`.
    ///
    /// `service` is the one shown; `services` (from `ServiceChoice.offered`) are offered as links
    /// when the program has 708 captions: plain links, so the choice works without JavaScript and
    /// each service's transcript has its own URL (`#lN` anchors are per service).
    static func programHead(_ p: ProgramSummary, service: Int, services: [ServiceLineCount]) -> String {
        let lines = services.first { $0.service == service }?.lines ?? 0
        var body = layoutHead(title: programTitle(p.name))
        body += "<h1>\(HTML.escape(programTitle(p.name)))</h1>\n"
        body += "<p class=\"muted\">\(HTML.escape(p.tunerDescription ?? "tuner \(p.tunerID)")) · \(UTCDate.dateTime(p.startedAt)) UTC"
        body += p.endedAt.map { " to \(UTCDate.dateTime($0)) UTC" } ?? " · on air"
        body += " · \(lines) lines</p>\n"
        if services.count > 1 {
            body += "<nav class=\"services\" id=\"services\" aria-label=\"Captions\">Captions: "
            for s in services {
                let text = "\(HTML.escape(ServiceChoice.label(s.service))) (\(s.lines) lines)"
                body += s.service == service
                    ? "<strong aria-current=\"page\" data-service=\"\(s.service)\">\(text)</strong>"
                    : "<a href=\"\(ServiceChoice.url("/programs/\(p.id)", service: s.service))\" data-service=\"\(s.service)\">\(text)</a>"
            }
            body += "</nav>\n"
        }
        body += "<p class=\"downloads\">Download\(service == CaptionService.cea608 ? "" : " (\(HTML.escape(ServiceChoice.label(service))))"): "
        for (kind, label) in [(TranscriptKind.srt, "SRT"), (.vtt, "WebVTT"), (.txt, "Text")] {
            body += "<a href=\"\(ServiceChoice.url("/programs/\(p.id)/\(kind.rawValue)", service: service))\" download>\(label)</a>"
        }
        body += "</p>\n"
        return body + "<ol class=\"lines transcript\" data-service=\"\(service)\">\n"
    }

    static func programLines(_ lines: [CaptionLine]) -> String {
        var out = ""
        for line in lines {
            out += "<li id=\"l\(line.sequence)\"><a class=\"t\" href=\"#l\(line.sequence)\">\(CaptionTime.format(line.startMs))</a><span class=\"text\">\(HTML.escape(line.text))</span></li>\n"
        }
        return out
    }

    /// `complete` false: the database failed part way; the page says so instead of ending silently.
    static func programFoot(complete: Bool) -> String {
        "</ol>\n" + (complete ? "" : "<p class=\"banner\">The rest of the transcript could not be read; reload the page.</p>\n") + layoutFoot()
    }

    // MARK: Search

    /// The services the search form offers: 608 and the six standard 708 services (7 to 63, the
    /// extended ones, are searched with `?service=N`).
    static let searchServices = [CaptionService.cea608] + Array(1...6)

    static func search(query: String, service: Int, hits: [SearchHit], offset: Int, pageSize: Int, error: String?) -> String {
        var body = "<h1>Search</h1>\n"
        body += "<form class=\"filters\" action=\"/search\" method=\"get\"><label>Words or \"a phrase\"<input type=\"search\" name=\"q\" value=\"\(HTML.escape(query))\" size=\"30\" autofocus></label>"
        body += "<label>Captions<select name=\"service\">"
        for s in Set(searchServices + [service]).sorted() {
            body += "<option value=\"\(s)\"\(s == service ? " selected" : "")>\(HTML.escape(ServiceChoice.label(s)))</option>"
        }
        body += "</select></label><button>Search</button></form>\n"
        if let error {
            body += "<p class=\"banner\">\(HTML.escape(error))</p>\n"
        } else if !query.isEmpty {
            if hits.isEmpty {
                body += "<p class=\"muted\" id=\"no-results\">No captions match.</p>\n"
            } else {
                body += "<ol class=\"lines results\" start=\"\(offset + 1)\">\n"
                for hit in hits {
                    let url = HTML.escape(ServiceChoice.lineURL(hit.line))
                    body += "<li class=\"hit\"><div><a class=\"program\" href=\"\(url)\">\(HTML.escape(programTitle(hit.programName)))</a>"
                    body += " <span class=\"muted\">\(UTCDate.dateTime(hit.programStartedAt)) UTC · at <a class=\"t\" href=\"\(url)\">\(CaptionTime.format(hit.line.startMs))</a></span>"
                    body += "<div class=\"text\">"
                    for part in hit.snippet {
                        body += part.isMatch ? "<mark>\(HTML.escape(part.text))</mark>" : HTML.escape(part.text)
                    }
                    body += "</div></div></li>\n"
                }
                body += "</ol>\n"
                if hits.count == pageSize {
                    let serviceParameter = service == CaptionService.cea608 ? "" : "&amp;service=\(service)"
                    body += "<p><a href=\"/search?q=\(HTML.queryValue(query))\(serviceParameter)&amp;offset=\(offset + pageSize)\">More results</a></p>\n"
                }
            }
        }
        return layout(title: query.isEmpty ? "Search" : "Search: \(query)", body: body, query: query)
    }

    // MARK: Errors

    /// The 503 page. It names no database, path, user, host or server message: those go to the
    /// log only (this page is public).
    static func unavailable() -> String {
        layout(title: "Database unreachable", body: """
        <h1>The caption database is unreachable</h1>
        <p class="banner">The web server is running, but it cannot reach the caption database right now, so archive, search and live captions are unavailable. Captions are still being recorded by the repository nodes; try again in a minute.</p>
        <p class="muted">The operator finds the details in the log of ccr web.</p>
        """)
    }

    /// The answer to a search stopped by a limit (too slow, or too many searches at once).
    static func searchLimited(query: String, service: Int, busy: Bool) -> String {
        let why = busy ? "Too many searches are running right now; try again in a moment."
            : "This search takes too long; try fewer or rarer words, or a shorter phrase."
        return search(query: query, service: service, hits: [], offset: 0, pageSize: 0, error: why)
    }

    /// A 400 page: `what` says which parameter was wrong and what it takes.
    static func badRequest(_ what: String) -> String {
        layout(title: "Bad request", body: "<h1>Bad request</h1><p class=\"banner\">\(HTML.escape(what))</p>")
    }

    static func notFound(_ what: String) -> String {
        layout(title: "Not found", body: "<h1>Not found</h1><p>\(HTML.escape(what))</p><p><a href=\"/archive\">Browse the archive</a></p>")
    }

    /// The 500 page; like `unavailable`, without details (they are logged).
    static func failure() -> String {
        layout(title: "Error", body: "<h1>Something went wrong</h1><p class=\"banner\">The page could not be made; the operator finds the details in the log of ccr web.</p>")
    }
}
