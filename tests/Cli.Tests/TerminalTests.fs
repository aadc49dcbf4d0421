module Hybrid.CliTests.TerminalTests

open System
open System.IO
open Expecto
open Spectre.Console
open Hybrid.Cli
open Hybrid.Features

/// A Spectre console writing into `writer` without ANSI sequences, as wide as `width` columns.
let private consoleInto (writer: TextWriter) (width: int) =
    let console = AnsiConsole.Create(AnsiConsoleSettings(Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Out = AnsiConsoleOutput(writer)))
    console.Profile.Width <- width
    console

[<Tests>]
let tests =
    testSequenced <| testList "Terminal" [
        test "writers other than the process's own terminal are never drawn on" {
            use writer = new StringWriter()
            Expect.isFalse (Terminal.isLive writer) "a string writer is not a terminal"
            Expect.isNone (Terminal.consoleOf writer) "so it gets plain lines"
        }

        test "without a live error writer the body logs plain lines and the library's progress keeps its plain reporter" {
            use log = new StringWriter()
            use error = new StringWriter()
            let reporter =
                Terminal.withProgress error log (fun write ->
                    write "fold 1 epoch 1/2"
                    write "fold 1 epoch 2/2"
                    Progress.create "train" 2)
            Expect.equal (log.ToString().Replace("\r\n", "\n")) "fold 1 epoch 1/2\nfold 1 epoch 2/2\n" "the lines, as written"
            Expect.isFalse (log.ToString().Contains "\u001b") "no ANSI sequence"
            Expect.equal (reporter.GetType()) ((Progress.console "train" 2).GetType()) "the console reporter, not a drawn task"
        }

        test "a table of numbers holds its title, headers and cells, numbers right-aligned" {
            use writer = new StringWriter()
            let console = consoleInto writer 100
            console.Write(Terminal.table (Some "by fold") [ "fold"; "test acc" ] [ [ "george"; "0.9500" ]; [ "nicolas"; "1.0000" ] ])
            let text = writer.ToString()
            for part in [ "by fold"; "fold"; "test acc"; "george"; "0.9500"; "nicolas"; "1.0000" ] do
                Expect.stringContains text part (sprintf "the table shows %s" part)
            let row = text.Split('\n') |> Array.find (fun l -> l.Contains "george")
            Expect.isTrue (row.Contains " 0.9500 ") "the number sits in its cell"
            Expect.isTrue (row.IndexOf "0.9500" > row.IndexOf "george") "after the name"
        }

        test "cells are plain text: markup characters in file names are shown, not interpreted" {
            use writer = new StringWriter()
            let console = consoleInto writer 120
            console.Write(Terminal.textTable None [ "file"; "label" ] [ [ "clips/[red]odd[/].wav"; "7" ] ])
            console.Write(Terminal.grid [ "output", "runs/[bold]x" ])
            Expect.stringContains (writer.ToString()) "clips/[red]odd[/].wav" "the file name as it is"
            Expect.stringContains (writer.ToString()) "runs/[bold]x" "the grid value as it is"
        }
    ]
