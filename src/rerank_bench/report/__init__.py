"""`rerank-bench report`: leaderboard, Markdown, plots and HTML from result files."""
