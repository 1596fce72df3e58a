# The R side of the R kernel for the `run_code` tool (r_kernel.py starts it and serves the protocol).
#
# Started as `R --no-echo --no-restore --no-save --no-site-file --no-init-file -f kernel.R --args
# FOLDER ANSWER_FD`: it reads one cell number a line on its stdin, runs FOLDER/cell-N.R in the global
# environment, which persists from cell to cell as in R's console, and writes "N" to the pipe
# ANSWER_FD once the cell is done. Its fds 1 and 2 are the kernel's output pipes, so print(), cat(),
# message() and child processes land in the cell's stdout and stderr. What the cell leaves besides
# goes into FOLDER/cell-N/: value.txt, the value of the last expression as R's console prints it
# when it is visible (earlier visible values are printed to stdout, as the console would);
# error-name.txt, error-value.txt and error-traceback.txt; and plot-NNN.png, one per page drawn,
# from the PNG device (cairo) that drawing opens when the cell has no device open. SIGINT (from
# r_kernel.py) interrupts the running cell; between cells it is ignored.

local({
  arguments <- commandArgs(trailingOnly = TRUE)
  folder <- arguments[[1]]
  answers <- file(sprintf("/proc/self/fd/%s", arguments[[2]]), open = "w")
  cells <- file("stdin", open = "r")
  kernel <- new.env()
  kernel$plot_folder <- NULL
  kernel$devices <- integer(0)
  png_type <- if (isTRUE(capabilities("cairo"))) "cairo" else getOption("bitmapType")

  write_text <- function(text, path) {
    connection <- file(path, open = "w", encoding = "UTF-8")
    on.exit(close(connection))
    writeLines(text, connection, sep = "", useBytes = FALSE)
  }

  # A plot with no device open draws into a PNG file of the running cell's folder.
  options(device = function(...) {
    grDevices::png(
      file.path(kernel$plot_folder, "plot-%03d.png"),
      width = 7, height = 5, units = "in", res = 100, type = png_type
    )
    kernel$devices <- c(kernel$devices, grDevices::dev.cur())
  })

  close_plots <- function() {
    for (device in kernel$devices) {
      if (device %in% grDevices::dev.list()) try(grDevices::dev.off(device), silent = TRUE)
    }
    kernel$devices <- integer(0)
  }

  shown <- function(value) paste(utils::capture.output(print(value)), collapse = "\n")

  call_text <- function(call) {
    if (is.null(call)) return("")
    text <- paste(deparse(call, nlines = 1L, width.cutoff = 60L), collapse = "")
    if (startsWith(text, "eval(expressions[[index]]")) "" else text # the kernel's: a top-level call
  }

  describe <- function(condition, calls) {
    name <- if (inherits(condition, "simpleError")) "Error" else class(condition)[[1]]
    message <- conditionMessage(condition)
    call <- call_text(conditionCall(condition))
    lines <- if (nzchar(call)) sprintf("Error in %s : %s", call, message) else sprintf("Error: %s", message)
    frames <- vapply(calls, call_text, "")
    if (length(frames) > 0) {
      lines <- c(lines, "Traceback:", sprintf("%d: %s", rev(seq_along(frames)), rev(frames)))
    }
    list(name = name, value = message, traceback = paste(lines, collapse = "\n"))
  }

  warned <- function(warning) {
    call <- call_text(conditionCall(warning))
    where <- if (nzchar(call)) sprintf("In %s : ", call) else ""
    cat("Warning message:\n", where, conditionMessage(warning), "\n", sep = "", file = stderr())
    invokeRestart("muffleWarning")
  }

  cell_frames <- function(calls) {
    # The cell's own calls: after the kernel's eval() of the cell's expression, before the handler's.
    texts <- vapply(calls, call_text, "")
    first <- max(c(0L, which(!nzchar(texts)))) + 1L
    last <- length(texts) - 1L # the handler itself
    if (last >= 1L && startsWith(texts[[last]], ".handleSimpleError(")) last <- last - 1L
    if (first > last) list() else calls[first:last]
  }

  run_cell <- function(number) {
    path <- file.path(folder, sprintf("cell-%s.R", number))
    out <- file.path(folder, sprintf("cell-%s", number))
    kernel$plot_folder <- out
    dir.create(out, showWarnings = FALSE)
    code <- paste(readLines(path, encoding = "UTF-8", warn = FALSE), collapse = "\n")
    error <- NULL
    value <- NULL
    expressions <- tryCatch(
      parse(text = code, srcfile = srcfilecopy(sprintf("<cell %s>", number), code)),
      error = function(condition) {
        error <<- list(name = "SyntaxError", value = conditionMessage(condition), traceback = "")
        NULL
      }
    )
    count <- length(expressions)
    tryCatch(
      withCallingHandlers(
        for (index in seq_len(count)) {
          outcome <- withVisible(eval(expressions[[index]], globalenv()))
          if (outcome$visible && index < count) print(outcome$value)
          if (index == count && outcome$visible) value <- shown(outcome$value)
        },
        warning = warned,
        error = function(condition) error <<- describe(condition, cell_frames(sys.calls()))
      ),
      error = function(condition) if (is.null(error)) error <<- describe(condition, list()),
      interrupt = function(condition) {
        error <<- list(name = "Interrupted", value = "the cell was interrupted (SIGINT)", traceback = "")
      }
    )
    close_plots()
    if (!is.null(value)) write_text(value, file.path(out, "value.txt"))
    if (!is.null(error)) {
      for (field in c("name", "value", "traceback")) {
        write_text(error[[field]], file.path(out, sprintf("error-%s.txt", field)))
      }
    }
  }

  repeat {
    line <- tryCatch(readLines(cells, n = 1L), interrupt = function(condition) NA_character_)
    if (length(line) == 0L) break # r_kernel.py is gone
    if (is.na(line)) next # an interrupt as a cell ended
    tryCatch(
      {
        tryCatch(run_cell(line), error = function(condition) {
          cat("cove kernel: ", conditionMessage(condition), "\n", sep = "", file = stderr())
        })
        flush(stdout())
        flush(stderr())
      },
      interrupt = function(condition) NULL
    )
    repeat {
      done <- tryCatch(
        {
          writeLines(line, answers)
          flush(answers)
          TRUE
        },
        interrupt = function(condition) FALSE
      )
      if (done) break
    }
  }
})
