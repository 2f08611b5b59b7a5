"""RFNet's labelled datasets: the manifest format and RF1M's ``label.txt`` (``formats``, ``rf1m``), and
synthesis of labelled available/defective creatives split by product (``synth``)."""
