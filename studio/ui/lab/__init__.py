"""The Lab tab: train and fine-tune models on the artist's own work.

`panel.LabPanel` puts together the form (`form.py`), the live loss plot (`curves.py`), the
samples strip (`samples.py`) and the runs list (`runs.py`); the training itself runs in a
child process driven by `runtime.training.TrainingRun`, so the window never waits on it.
"""
