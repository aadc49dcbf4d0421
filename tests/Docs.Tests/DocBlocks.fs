/// The code blocks of the documentation (README.md and docs/*.md): every ```csharp / ```cs and ```fsharp / ```fs
/// block, with where it starts and how it is to be compiled. Other blocks (sh, json, xml, python, ...) are not code
/// of this project and are left out.
///
/// A block is compiled as it stands: a C# block as one source file of a project with the SDK's implicit usings, an F#
/// script block as a script. An HTML comment on the line before the opening fence changes that, and readers of the
/// rendered page do not see it:
///   `<!-- doctest: fragment -->`   the block is statements: a C# block is compiled as the body of a method;
///   `<!-- doctest: given` + lines + `-->`   the lines declare what the block takes as given (a C# fragment's
///                                  `Tensor clips = null!;`, an F# block's `let clips : Tensor = failwith "given"`) and
///                                  are compiled in front of it;
/// both may be combined (`<!-- doctest: fragment given` ...). Any other word after `doctest:` is an error.
module Hybrid.DocsTests.DocBlocks

open System
open System.IO

/// The language a block is compiled as.
type Language =
    | CSharp
    | FSharp

/// One code block of a markdown file.
type Block =
    { /// The markdown file, relative to the repository root with '/' separators (e.g. "docs/deployment.md").
      File: string
      /// The 1-based line of the block's first code line in that file.
      Line: int
      Language: Language
      /// The block's code, lines joined with '\n'.
      Code: string
      /// True when the block is statements to be compiled inside a method (C#).
      Fragment: bool
      /// Declarations compiled in front of the block (from `<!-- doctest: given ... -->`), or "".
      Given: string }

    /// "README.md:292 (csharp)": where the block is, for test names and messages.
    member b.Name = sprintf "%s:%d (%s)" b.File b.Line (match b.Language with CSharp -> "csharp" | FSharp -> "fsharp")

/// Raised for a malformed `doctest:` comment or an unclosed block; the message names file and line.
type DocBlockException(message: string) =
    inherit Exception(message)

let private languageOf (info: string) =
    match info.Trim().Split([| ' '; '{' |], StringSplitOptions.RemoveEmptyEntries) |> Array.tryHead |> Option.map (fun s -> s.ToLowerInvariant()) with
    | Some ("csharp" | "cs" | "c#") -> Some CSharp
    | Some ("fsharp" | "fs" | "f#") -> Some FSharp
    | _ -> None

/// The directive of a `<!-- doctest: ... -->` comment starting on `line`: its words and its further lines (without
/// the comment markers) read as (fragment, given).
let private directive (file: string) (line: int) (words: string) (body: string list) =
    let words = words.Split([| ' '; '\t'; ',' |], StringSplitOptions.RemoveEmptyEntries) |> List.ofArray
    for w in words do
        if w <> "fragment" && w <> "given" then
            raise (DocBlockException(sprintf "%s:%d: unknown doctest directive '%s' (expected fragment, given)" file line w))
    if not (List.contains "given" words) && body |> List.exists (fun l -> l.Trim() <> "") then
        raise (DocBlockException(sprintf "%s:%d: a doctest comment has lines after its first only with 'given'" file line))
    List.contains "fragment" words, (if List.contains "given" words then String.Join("\n", body) else "")

/// The code blocks of one markdown text; `file` is the name used in Block.File and in messages.
let parse (file: string) (text: string) : Block list =
    let lines = text.Replace("\r\n", "\n").Split('\n')
    let blocks = ResizeArray<Block>()
    // The directive of a doctest comment whose last line is the line before the current one.
    let mutable pending : (int * bool * string) option = None
    let mutable i = 0
    while i < lines.Length do
        let line = lines.[i]
        let trimmed = line.Trim()
        if trimmed.StartsWith "<!-- doctest:" then
            let start = i
            let first = trimmed.Substring("<!-- doctest:".Length)
            let closedOnFirst = first.Contains "-->"
            let words = if closedOnFirst then first.Substring(0, first.IndexOf "-->") else first
            let body = ResizeArray<string>()
            if not closedOnFirst then
                i <- i + 1
                while i < lines.Length && not (lines.[i].Contains "-->") do
                    body.Add lines.[i]
                    i <- i + 1
                if i >= lines.Length then raise (DocBlockException(sprintf "%s:%d: the doctest comment is not closed with -->" file (start + 1)))
                let last = lines.[i].Substring(0, lines.[i].IndexOf "-->")
                if last.Trim() <> "" then body.Add last
            let fragment, given = directive file (start + 1) words (List.ofSeq body)
            pending <- Some(i, fragment, given)
            i <- i + 1
        elif trimmed.StartsWith "```" then
            let opening = i
            let language = languageOf (trimmed.TrimStart('`'))
            let code = ResizeArray<string>()
            i <- i + 1
            while i < lines.Length && lines.[i].Trim() <> "```" do
                code.Add lines.[i]
                i <- i + 1
            if i >= lines.Length then raise (DocBlockException(sprintf "%s:%d: the code block is not closed with ```" file (opening + 1)))
            let fragment, given =
                match pending with
                | Some (endLine, f, g) when endLine = opening - 1 -> f, g
                | Some (endLine, _, _) -> raise (DocBlockException(sprintf "%s:%d: a doctest comment must stand on the line right before a code block" file (endLine + 1)))
                | None -> false, ""
            pending <- None
            match language with
            | Some l -> blocks.Add { File = file; Line = opening + 2; Language = l; Code = String.Join("\n", code); Fragment = fragment; Given = given }
            | None -> ()
            i <- i + 1
        else
            match pending with
            | Some (endLine, _, _) ->
                raise (DocBlockException(sprintf "%s:%d: a doctest comment must stand on the line right before a code block" file (endLine + 1)))
            | _ -> ()
            i <- i + 1
    List.ofSeq blocks

/// The markdown files whose blocks are compiled: README.md and docs/*.md of the repository at `root`, sorted.
let documentation (root: string) : string list =
    [ yield "README.md"
      for f in Directory.GetFiles(Path.Combine(root, "docs"), "*.md") |> Array.sort do
          yield "docs/" + Path.GetFileName f ]

/// Every C# and F# block of the documentation of the repository at `root`.
let all (root: string) : Block list =
    documentation root |> List.collect (fun f -> parse f (File.ReadAllText(Path.Combine(root, f))))
