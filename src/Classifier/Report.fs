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

let private enc (s: string) = WebUtility.HtmlEncode s

let private render (section: Section) =
    match section with
    | Table (title, rows) ->
        let body = rows |> List.map (fun (k, v) -> sprintf "<tr><th>%s</th><td>%s</td></tr>" (enc k) (enc v)) |> String.concat "\n"
        sprintf "<h2>%s</h2>\n<table>\n%s\n</table>" (enc title) body
    | Grid (title, columns, rows) ->
        let head = columns |> List.map (fun c -> sprintf "<th>%s</th>" (enc c)) |> String.concat ""
        let body =
            rows
            |> List.map (fun cells -> "<tr>" + (cells |> List.map (fun c -> sprintf "<td>%s</td>" (enc c)) |> String.concat "") + "</tr>")
            |> String.concat "\n"
        sprintf "<h2>%s</h2>\n<table>\n<tr>%s</tr>\n%s\n</table>" (enc title) head body
    | Images (title, images) ->
        let figures =
            images
            |> List.map (fun (file, caption) ->
                sprintf "<figure><img src=\"%s\" alt=\"%s\"><figcaption>%s</figcaption></figure>" (enc (file.Replace('\\', '/'))) (enc caption) (enc caption))
            |> String.concat "\n"
        sprintf "<h2>%s</h2>\n<div class=\"figures\">\n%s\n</div>" (enc title) figures

/// Writes `report.html` into `folder` and returns its path.
let write (folder: string) (title: string) (sections: Section list) =
    let style =
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}" +
        "table{border-collapse:collapse;margin-bottom:1em}th,td{border:1px solid #ccc;padding:4px 10px;text-align:left}" +
        ".figures{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}img{max-width:520px;border:1px solid #ddd}"
    let html =
        sprintf "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title><style>%s</style></head>\n<body>\n<h1>%s</h1>\n<p>Generated %s UTC by Hybrid.</p>\n%s\n</body></html>\n"
            (enc title) style (enc title) (DateTime.UtcNow.ToString "yyyy-MM-dd HH:mm:ss") (sections |> List.map render |> String.concat "\n")
    Directory.CreateDirectory folder |> ignore
    let path = Path.Combine(folder, "report.html")
    File.WriteAllText(path, html)
    path
