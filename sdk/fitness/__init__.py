"""The fitness layer on top of the pose stream: joint angles, the side of the body to read, repetition
counting with per-rep form metrics, and the exercise catalogue. No model of its own."""

from edgepose.fitness.angles import ANGLE_NAMES, Angle, joint_angle, joint_angles
from edgepose.fitness.exercises import CATALOGUE, Exercise, get_exercise, load_exercises
from edgepose.fitness.reps import PoseRepCounter, Rep, RepCounter, RepSummary
from edgepose.fitness.signal import Reading, SideSelector

__all__ = [
    "ANGLE_NAMES",
    "CATALOGUE",
    "Angle",
    "Exercise",
    "PoseRepCounter",
    "Reading",
    "Rep",
    "RepCounter",
    "RepSummary",
    "SideSelector",
    "get_exercise",
    "joint_angle",
    "joint_angles",
    "load_exercises",
]
