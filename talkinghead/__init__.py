"""talkinghead: one photo + speech in any language -> a lip-synced talking-head video, on a CPU."""

from talkinghead.config import DubOptions, GenerateOptions
from talkinghead.errors import InputError, NoFaceError, OutputError, TalkingHeadError
from talkinghead.dubbing import Dubber, DubReport, dub
from talkinghead.pipeline import Animator, demo, generate

__version__ = "0.1.0"

__all__ = ["Animator", "DubOptions", "DubReport", "Dubber", "GenerateOptions", "InputError", "NoFaceError", "OutputError", "TalkingHeadError",
           "__version__", "demo", "dub", "generate"]
