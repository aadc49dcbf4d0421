/// The HTML report a training run leaves beside its model: settings, results, per-class metrics and the
/// run's PNG plots, in one self-contained page that links the images by relative path.
module Hybrid.Classifier.Report

open System
open System.IO
open System.Net

/// One section of the report.
type Section =
    /// A heading and key/value rows.
    | Table of title: string * rows: (string * string) list
    /// A heading, column names and rows of cells.
    | Grid of title: string * columns: string list * rows: string list list
    /// A heading and PNG files (paths relative to the report) with captions.
    | Images of title: string * images: (string * string) list

let private enc (s: string) : string = nonNull (WebUtility.HtmlEncode s)

/// Values longer than this many characters are drawn with the `long` class (smaller monospace text that wraps).
let longValueChars = 60

/// A table value as HTML: escaped; a long value (see longValueChars) gets class="long" and a line-break
/// opportunity (<wbr>) after each comma, semicolon, plus sign and slash, so that lists and paths wrap between their items.
let valueCell (value: string) =
    if value.Length <= longValueChars then sprintf "<td>%s</td>" (enc value)
    else
        let text = enc value
        let breakable = text.Replace(",", ",<wbr>").Replace(";", ";<wbr>").Replace("+", "+<wbr>").Replace("/", "/<wbr>")
        sprintf "<td class=\"long\">%s</td>" breakable

/// The page's style sheet: the body at most 1100 px wide; key/value tables (class "settings") use the full width
/// with a fixed layout (keys a quarter of it) and wrap long values anywhere (overflow-wrap, word-break), so no
/// value widens the page; wide grids scroll inside their own box; images shrink to the page.
let styleSheet =
    "*{box-sizing:border-box}body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}" +
    "table{border-collapse:collapse;margin-bottom:1em}th,td{border:1px solid #ccc;padding:4px 10px;text-align:left;vertical-align:top}" +
    "table.settings{table-layout:fixed;width:100%;max-width:100%}table.settings th{width:25%}" +
    "table.settings th,table.settings td{overflow-wrap:anywhere;word-break:break-word}" +
    "td.long{font-family:monospace;font-size:0.9em}" +
    ".wide{max-width:100%;overflow-x:auto}" +
    ".figures{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;max-width:100%}img{max-width:min(520px,100%);height:auto;border:1px solid #ddd}"

let private render (section: Section) =
    match section with
    | Table (title, rows) ->
        let body = rows |> List.map (fun (k, v) -> sprintf "<tr><th>%s</th>%s</tr>" (enc k) (valueCell v)) |> String.concat "\n"
        sprintf "<h2>%s</h2>\n<table class=\"settings\">\n%s\n</table>" (enc title) body
    | Grid (title, columns, rows) ->
        let head = columns |> List.map (fun c -> sprintf "<th>%s</th>" (enc c)) |> String.concat ""
        let body =
            rows
            |> List.map (fun cells -> "<tr>" + (cells |> List.map (fun c -> sprintf "<td>%s</td>" (enc c)) |> String.concat "") + "</tr>")
            |> String.concat "\n"
        sprintf "<h2>%s</h2>\n<div class=\"wide\"><table>\n<tr>%s</tr>\n%s\n</table></div>" (enc title) head body
    | Images (title, images) ->
        let figures =
            images
            |> List.map (fun (file, caption) ->
                sprintf "<figure><img src=\"%s\" alt=\"%s\"><figcaption>%s</figcaption></figure>" (enc (file.Replace('\\', '/'))) (enc caption) (enc caption))
            |> String.concat "\n"
        sprintf "<h2>%s</h2>\n<div class=\"figures\">\n%s\n</div>" (enc title) figures

/// Writes `report.html` into `folder` and returns its path.
let write (folder: string) (title: string) (sections: Section list) =
    let html =
        sprintf "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title><style>%s</style></head>\n<body>\n<h1>%s</h1>\n<p>Generated %s UTC by Hybrid.</p>\n%s\n</body></html>\n"
            (enc title) styleSheet (enc title) (DateTime.UtcNow.ToString "yyyy-MM-dd HH:mm:ss") (sections |> List.map render |> String.concat "\n")
    Directory.CreateDirectory folder |> ignore
    let path = Path.Combine(folder, "report.html")
    File.WriteAllText(path, html)
    path
